using System.Collections.Concurrent;

namespace Drakkar.IntegrationTests.Support;

/// <summary>
/// Watches a group's committed offsets while a test runs and records every offset that was committed before the
/// test's own notion of "done" held for it (settled by a handler, written by a sink, …).
/// </summary>
internal sealed class CommitWatcher
{
    private readonly ConcurrentQueue<string> _violations = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _watching;

    public CommitWatcher(string brokers, string topic, string group, int partitions, Func<int, long, bool> isDone, string doneMeans)
    {
        _watching = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                var committed = TestWorker.Committed(brokers, topic, group, partitions);
                for (var p = 0; p < partitions; p++)
                    for (long o = 0; o < committed[p]; o++)
                        if (!isDone(p, o)) _violations.Enqueue($"{p}@{o} committed (to {committed[p]}) before it was {doneMeans}");
                await Task.Delay(25);
            }
        });
    }

    public IReadOnlyCollection<string> Violations => _violations;

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _watching;
        _stop.Dispose();
    }
}
