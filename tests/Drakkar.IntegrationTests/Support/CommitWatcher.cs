using System.Collections.Concurrent;
using System.Diagnostics;
using Confluent.Kafka;

namespace Drakkar.IntegrationTests.Support;

/// <summary>
/// Watches a group's committed offsets while a test runs and records every offset that was committed before the
/// test's own notion of "done" held for it (settled by a handler, written by a sink, …).
/// </summary>
/// <remarks>
/// One consumer (which never joins the group) asks the coordinator for the committed offsets back to back, about
/// every millisecond, so a premature commit is seen even when the work it passed settles a few milliseconds later.
/// (A fresh consumer per sample, as before, left 25 ms and more between samples: a commit that ran a little ahead of
/// a fast sink went unseen.) "Done" must be monotonic, as it is for every use here: each offset is checked once, the
/// first time a commit covers it.
/// </remarks>
internal sealed class CommitWatcher
{
    private readonly ConcurrentQueue<string> _violations = new();
    private readonly ConcurrentQueue<(long Since, long At, int Partition, long Offset)> _changes = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _watching;

    public CommitWatcher(string brokers, string topic, string group, int partitions, Func<int, long, bool> isDone, string doneMeans)
    {
        _watching = Task.Run(async () =>
        {
            using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = brokers, GroupId = group }).Build();
            var assignment = Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)).ToArray();
            var checkedUpTo = new long[partitions];
            var previousAsked = Stopwatch.GetTimestamp();
            while (!_stop.IsCancellationRequested)
            {
                var asked = Stopwatch.GetTimestamp();
                foreach (var committed in consumer.Committed(assignment, TimeSpan.FromSeconds(10)))
                {
                    var p = committed.Partition.Value;
                    if (committed.Offset.Value > checkedUpTo[p]) _changes.Enqueue((previousAsked, Stopwatch.GetTimestamp(), p, committed.Offset.Value));
                    for (var o = checkedUpTo[p]; o < committed.Offset.Value; o++)
                        if (!isDone(p, o)) _violations.Enqueue($"{p}@{o} committed (to {committed.Offset.Value}) before it was {doneMeans}");
                    checkedUpTo[p] = Math.Max(checkedUpTo[p], committed.Offset.Value);
                }
                previousAsked = asked;
                await Task.Delay(1);
            }
        });
    }

    public IReadOnlyCollection<string> Violations => _violations;

    /// <summary>
    /// Each newly seen committed offset, with the <see cref="Stopwatch"/> timestamp it was first seen at (<c>At</c>) and
    /// the one at which the sample before was asked for (<c>Since</c>): the commit was made between the two. On a busy
    /// machine a sample can take far longer than the usual millisecond, and only the pair bounds the commit's time.
    /// </summary>
    public IReadOnlyCollection<(long Since, long At, int Partition, long Offset)> Changes => _changes;

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _watching;
        _stop.Dispose();
    }
}
