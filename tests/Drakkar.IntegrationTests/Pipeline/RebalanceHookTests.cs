using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>
/// SPEC P2 and O7 through whole workers: <c>OnAssign</c> and <c>OnRevoke</c> are called with the partitions that
/// moved, a revoke gives unfinished work up at <c>drain_timeout_seconds</c>, and lost partitions are abandoned
/// uncommitted; in every case the next owner redoes what was not committed.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class RebalanceHookTests(KafkaBroker kafka) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly string _pids = Directory.CreateTempSubdirectory("drakkar-rebalance-").FullName;

    public void Dispose() => Directory.Delete(_pids, recursive: true);

    /// <summary>Whether the hanging task of <paramref name="partition"/> is still running (reaped once killed).</summary>
    private bool HangingTaskRuns(int partition) =>
        Directory.Exists($"/proc/{File.ReadAllText(Path.Combine(_pids, $"{partition}.pid")).Trim()}");

    /// <summary>
    /// Records the rebalance hooks and every message it settles. With <c>hangIn</c>, the first task for offset 0 of each
    /// partition runs <c>sleep 60</c> (work that cannot finish within any drain) and leaves its pid in
    /// <c>{hangIn}/{partition}.pid</c>.
    /// </summary>
    private sealed class RebalanceHandler(string? hangIn) : DrakkarHandler
    {
        private readonly ConcurrentDictionary<int, bool> _hung = new();

        public ConcurrentQueue<(long At, string Hook, int[] Partitions)> Rebalances { get; } = new();
        public ConcurrentDictionary<(int Partition, long Offset), int> Arranged { get; } = new();
        public ConcurrentDictionary<(int Partition, long Offset), int> Settled { get; } = new();

        /// <summary>Every partition an <c>OnAssign</c> call named (a cooperative rebalance may call it with none first).</summary>
        public int[] Assigned => [.. Rebalances.Where(r => r.Hook == "assign").SelectMany(r => r.Partitions).Order()];
        public (long At, string Hook, int[] Partitions)[] Revokes => [.. Rebalances.Where(r => r.Hook == "revoke")];

        public override ValueTask OnAssign(IReadOnlyList<PartitionId> partitions)
        {
            Rebalances.Enqueue((Stopwatch.GetTimestamp(), "assign", [.. partitions.Select(p => p.Partition).Order()]));
            return ValueTask.CompletedTask;
        }

        public override ValueTask OnRevoke(IReadOnlyList<PartitionId> partitions)
        {
            Rebalances.Enqueue((Stopwatch.GetTimestamp(), "revoke", [.. partitions.Select(p => p.Partition).Order()]));
            return ValueTask.CompletedTask;
        }

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m =>
            {
                Arranged.AddOrUpdate((m.Partition, m.Offset), 1, (_, n) => n + 1);
                var hangs = hangIn is not null && m.Offset == 0 && _hung.TryAdd(m.Partition, true);
                return new ExecutorTask(TaskId.New("rebalance"))
                {
                    BinaryPath = hangs ? "/bin/sh" : null,
                    Args = hangs ? ["-c", $"echo $$ > {hangIn}/{m.Partition}.pid; exec sleep 60"] : [],
                    Precomputed = hangs ? null : new PrecomputedResult(),
                    SourceOffsets = [m.Offset],
                };
            })]);

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group)
        {
            Settled.AddOrUpdate((group.Message.Partition, group.Message.Offset), 1, (_, n) => n + 1);
            return ValueTask.FromResult<CollectResult?>(null);
        }
    }

    [Fact]
    public async Task OnAssign_and_OnRevoke_name_the_partitions_that_moved_and_a_revoke_gives_up_unfinished_work_at_the_drain_timeout()
    {
        const int partitions = 2, total = 20;
        var topic = kafka.CreateTopic("rebalance-hooks", partitions);
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, partitions, total);
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c => c.Executor.DrainTimeoutSeconds = 2);
        var first = new RebalanceHandler(_pids);
        var second = new RebalanceHandler(null);
        bool IsSettled(int p, long o) => first.Settled.ContainsKey((p, o)) || second.Settled.ContainsKey((p, o));
        var watcher = new CommitWatcher(kafka.BootstrapServers, topic, group, partitions, IsSettled, "settled");
        var firstLogs = new LogCapture();

        await using var workerA = await TestWorker.StartAsync(first, config, "worker-a", loggers: firstLogs);
        // Both partitions are assigned to A, whose offset-0 tasks now hang.
        await Eventually.True(() => first.Arranged.ContainsKey((0, 0)) && first.Arranged.ContainsKey((1, 0)), Patience, "A arranging both partitions");
        Assert.Equal([0, 1], first.Assigned);
        Assert.Empty(first.Revokes);
        await Eventually.True(() => workerA.Metrics.OffsetLag.Has("0") && workerA.Metrics.OffsetLag.Has("1"), Patience, "A's lag series for both partitions");

        await using var workerB = await TestWorker.StartAsync(second, config, "worker-b");
        await Eventually.True(() => first.Revokes.Length > 0, Patience, "A revoking a partition to B");
        var revoke = Assert.Single(first.Revokes);
        var moved = Assert.Single(revoke.Partitions);
        await Eventually.True(() => second.Assigned.Length > 0, Patience, "B's OnAssign");
        Assert.Equal([moved], second.Assigned);

        // OnRevoke ran after the drain, which waited its full 2 s for the hanging task and then gave it up.
        var draining = Assert.Single(firstLogs.Containing("Partitions revoked, draining"));
        Assert.InRange(Stopwatch.GetElapsedTime(draining.Timestamp, revoke.At).TotalSeconds, 1.8, 10);
        Assert.Single(firstLogs.Containing($"Drain of {topic}[{moved}] timed out"));
        await Eventually.True(() => !HangingTaskRuns(moved), TimeSpan.FromSeconds(10), "the given-up task killed");
        Assert.True(HangingTaskRuns(1 - moved), "the task of the partition A keeps is left running");

        // B redoes the abandoned message and finishes the partition; A keeps the other one.
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, partitions)[moved] == total / partitions,
            Patience, "B committing the moved partition to its end");
        Assert.True(second.Settled.ContainsKey((moved, 0)), "B redid the message A gave up");
        Assert.False(first.Settled.ContainsKey((moved, 0)));
        Assert.Equal([1 - moved], workerA.AssignedPartitions);
        // A's per-partition gauges no longer report the partition it gave up (a sum over workers counted it twice).
        var (movedLabel, keptLabel) = (moved.ToString(CultureInfo.InvariantCulture), (1 - moved).ToString(CultureInfo.InvariantCulture));
        await Eventually.True(() => !workerA.Metrics.OffsetLag.Has(movedLabel), Patience, "the moved partition's lag series gone from A");
        Assert.False(workerA.Metrics.PartitionQueueSize.Has(movedLabel));
        Assert.True(workerA.Metrics.OffsetLag.Has(keptLabel) && workerA.Metrics.PartitionQueueSize.Has(keptLabel));
        await watcher.StopAsync();
        Assert.Empty(watcher.Violations);
        await Task.WhenAll(workerA.StopAsync(), workerB.StopAsync());
    }

    /// <summary>An <c>OnAssign</c> written without <c>async</c>, throwing from the call itself.</summary>
    private sealed class ThrowingAssignHandler : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) => Tasks([]);

        public override ValueTask OnAssign(IReadOnlyList<PartitionId> partitions) => throw new InvalidOperationException("boom in OnAssign");
    }

    /// <summary>
    /// The hook's exception escaped into the poll loop, which stopped: the worker consumed nothing more and still
    /// answered ready.
    /// </summary>
    [Fact]
    public async Task An_OnAssign_that_throws_without_async_is_logged_and_consumption_goes_on()
    {
        var topic = kafka.CreateTopic("assign-throws", 2);
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 2, 10);
        using var logs = new LogCapture();

        await using var worker = await TestWorker.StartAsync(new ThrowingAssignHandler(), TestWorker.Config(kafka.BootstrapServers, topic, group), loggers: logs);

        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, 2).Sum() == 10, Patience, () => $"all 10 committed\n{logs.Text()}");
        Assert.Contains(logs.Containing("on_assign"), line => line.Exception?.Message == "boom in OnAssign");
        Assert.False(worker.Failed.IsCompleted);
        Assert.True(worker.Readiness.IsReady, string.Join("; ", worker.Readiness.Reasons));
        await worker.StopAsync();
    }

    [Fact]
    public async Task Lost_partitions_are_abandoned_uncommitted_OnRevoke_is_called_and_the_work_is_redone_after_rejoining()
    {
        const int total = 5;
        var topic = kafka.CreateTopic("lost");
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, total);
        var handler = new RebalanceHandler(_pids);
        var logs = new LogCapture();
        var watcher = new CommitWatcher(kafka.BootstrapServers, topic, group, 1, (p, o) => handler.Settled.ContainsKey((p, o)), "settled");
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group);

        await using var worker = await TestWorker.StartAsync(handler, config, loggers: logs);
        await Eventually.True(() => handler.Settled.Count == total - 1, Patience, "everything but the hanging offset 0 settled");

        // The coordinator goes silent for longer than the session timeout (6 s): the member counts its partition lost.
        kafka.Broker.SetBrokerDown();
        try
        {
            await Eventually.True(() => handler.Revokes.Length > 0, TimeSpan.FromSeconds(30), "OnRevoke for the lost partition");
        }
        finally
        {
            kafka.Broker.SetBrokerUp();
        }
        Assert.Equal([0], handler.Revokes[0].Partitions);
        Assert.NotEmpty(logs.Containing("Partitions lost, work abandoned uncommitted: 0"));
        Assert.Empty(logs.Containing("Partitions revoked, draining"));
        await Eventually.True(() => !HangingTaskRuns(0), TimeSpan.FromSeconds(10), "the abandoned task killed");

        // Back in the group, the partition is assigned again and consumed from the committed offset: offset 0 again.
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, 1)[0] == total, Patience, "every offset committed after rejoining");
        Assert.Equal([0, 0], handler.Assigned);
        Assert.Equal(2, handler.Arranged[(0, 0)]);
        Assert.Equal(1, handler.Settled[(0, 0)]);
        await watcher.StopAsync();
        Assert.Empty(watcher.Violations);
        await worker.StopAsync();
    }
}
