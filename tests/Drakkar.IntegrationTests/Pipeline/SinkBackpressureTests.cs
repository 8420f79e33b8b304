using System.Collections.Concurrent;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Sinks;

namespace Drakkar.IntegrationTests.Pipeline;

[Payload]
public sealed partial record Marker(int Partition, long Offset);

/// <summary>SPEC O9 through the whole worker: a batching sink that pushes back makes the partition rewind and redo its work.</summary>
[Collection(KafkaCollection.Name)]
public sealed class SinkBackpressureTests(KafkaBroker kafka)
{
    private sealed class MarkingHandler : DrakkarHandler
    {
        public ConcurrentDictionary<(int, long), int> Arranged { get; } = new();
        /// <summary>When each message was arranged again after its first time (<see cref="System.Diagnostics.Stopwatch"/> timestamps).</summary>
        public ConcurrentQueue<(long At, int Partition)> Rearranged { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
        {
            foreach (var m in messages)
                if (Arranged.AddOrUpdate((m.Partition, m.Offset), 1, (_, n) => n + 1) > 1)
                    Rearranged.Enqueue((System.Diagnostics.Stopwatch.GetTimestamp(), m.Partition));
            return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("mark"))
            {
                Precomputed = new PrecomputedResult($"{m.Partition}:{m.Offset}"),
                SourceOffsets = [m.Offset],
            })]);
        }

        public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
        {
            var parts = result.Stdout.Split(':');
            return ValueTask.FromResult<CollectResult?>(new CollectResult
            {
                Custom = { CustomPayload.Of("pushy", new Marker(int.Parse(parts[0]), long.Parse(parts[1]))) },
            });
        }
    }

    [Fact]
    public async Task Backpressure_at_a_checkpoint_rewinds_the_partition_and_nothing_is_committed_unwritten_or_lost()
    {
        const int partitions = 2, total = 400;
        var topic = kafka.CreateTopic("sink-backpressure", partitions);
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, partitions, total);
        var sink = new PushyBatchingSink(refusals: 3, () => new SinkBackpressureException(TimeSpan.FromMilliseconds(200), "destination busy"));
        var handler = new MarkingHandler();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c =>
        {
            c.Executor.WindowSize = 20;
            c.Sinks.Custom["pushy"] = new() { ["main"] = new CustomSinkConfig() };
        });

        var watcher = new CommitWatcher(kafka.BootstrapServers, topic, group, partitions, (p, o) => sink.Written.ContainsKey((p, o)),
            "written by the sink");

        await using var worker = await TestWorker.StartAsync(handler, config, plugins: new SinkRegistry().Register("pushy", _ => sink));
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, partitions).Sum() == total,
            TimeSpan.FromSeconds(60), "every message committed");
        await watcher.StopAsync();

        Assert.Equal(3, sink.Refused);
        Assert.Empty(watcher.Violations);
        Assert.Equal(total, sink.Written.Count);
        Assert.Contains(handler.Arranged.Values, n => n > 1); // the rewound work was consumed and arranged again
        await worker.StopAsync();
    }

    [Fact]
    public async Task A_flush_that_fails_commits_nothing_and_its_partition_is_redone_after_1s()
    {
        const int total = 200;
        var topic = kafka.CreateTopic("sink-flush-failure");
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, total);
        // An ordinary exception, not a backpressure request: the checkpoint is abandoned with the default 1 s pause.
        var sink = new PushyBatchingSink(refusals: 1, () => new IOException("disk full"));
        var handler = new MarkingHandler();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c =>
        {
            c.Executor.WindowSize = 20;
            c.Sinks.Custom["pushy"] = new() { ["main"] = new CustomSinkConfig() };
        });
        var watcher = new CommitWatcher(kafka.BootstrapServers, topic, group, 1, (p, o) => sink.Written.ContainsKey((p, o)), "written by the sink");

        await using var worker = await TestWorker.StartAsync(handler, config, plugins: new SinkRegistry().Register("pushy", _ => sink));
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, 1)[0] == total, TimeSpan.FromSeconds(60),
            "every message committed");
        await watcher.StopAsync();

        Assert.Empty(watcher.Violations);
        var refused = Assert.Single(sink.Refusals);
        // The work of the abandoned checkpoint was consumed and arranged again, about a second after the failed flush.
        var redone = handler.Rearranged.First();
        Assert.InRange(System.Diagnostics.Stopwatch.GetElapsedTime(refused.At, redone.At).TotalSeconds, 0.9, 10);
        Assert.Equal(total, sink.Written.Count);
        await worker.StopAsync();
    }
}
