using System.Collections.Concurrent;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Sinks;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>SPEC O8 with the delivery engine: stopping while payloads are queued commits exactly what was written.</summary>
[Collection(KafkaCollection.Name)]
public sealed class GracefulStopDeliveryTests(KafkaBroker kafka)
{
    /// <summary>A plugin sink that takes its time over every batch and records each marker once written.</summary>
    private sealed class SlowSink : ISink
    {
        private int _calls;

        public ConcurrentDictionary<(int Partition, long Offset), int> Written { get; } = new();
        public int Calls => Volatile.Read(ref _calls);
        public string Kind => "slow";
        public string Name => "main";
        public bool IsIdempotent => false;
        public bool IsConnected => true;
        public ValueTask ConnectAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
        public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            await Task.Delay(150, cancellationToken);
            foreach (var payload in batch.Payloads)
            {
                var marker = (Marker)payload.Data.Value;
                Written.AddOrUpdate((marker.Partition, marker.Offset), 1, (_, n) => n + 1);
            }
        }
    }

    private sealed class MarkingHandler : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("mark"))
            {
                Precomputed = new PrecomputedResult($"{m.Partition}:{m.Offset}"),
                SourceOffsets = [m.Offset],
            })]);

        public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
        {
            var parts = result.Stdout.Split(':');
            return ValueTask.FromResult<CollectResult?>(new CollectResult
            {
                Custom = { CustomPayload.Of("slow", new Marker(int.Parse(parts[0]), long.Parse(parts[1]))) },
            });
        }
    }

    [Fact]
    public async Task Stopping_while_deliveries_are_queued_commits_exactly_the_messages_whose_payloads_were_written()
    {
        const int partitions = 2, total = 1_000;
        var topic = kafka.CreateTopic("stop-queued", partitions);
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, partitions, total);
        var sink = new SlowSink();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c =>
        {
            c.Executor.WindowSize = 10;
            // Consumption pauses at 60 payloads in flight, so most of the topic is still unconsumed when the worker stops.
            c.Sinks.MaxInflightPayloads = 60;
            c.Sinks.Custom["slow"] = new() { ["main"] = new CustomSinkConfig() };
        });
        var watcher = new CommitWatcher(kafka.BootstrapServers, topic, group, partitions, (p, o) => sink.Written.ContainsKey((p, o)),
            "written by the sink");

        var worker = await TestWorker.StartAsync(new MarkingHandler(), config, plugins: new SinkRegistry().Register("slow", _ => sink));
        long queuedAtStop = 0;
        try
        {
            // Mid-run: periodic commits have happened, and payloads are queued behind the slow sink.
            await Eventually.True(() => sink.Written.Count >= 100 && worker.Delivery!.InFlightPayloads > 0
                && TestWorker.Committed(kafka.BootstrapServers, topic, group, partitions).Sum() > 0, TimeSpan.FromSeconds(60),
                "some payloads written and committed, and more queued");
            queuedAtStop = worker.Delivery!.InFlightPayloads;
        }
        finally
        {
            await worker.StopAsync();
        }
        await watcher.StopAsync();

        Assert.True(queuedAtStop > 0);
        Assert.Empty(watcher.Violations);
        var committed = TestWorker.Committed(kafka.BootstrapServers, topic, group, partitions);
        for (var p = 0; p < partitions; p++)
        {
            var end = Math.Max(committed[p], 0);
            var written = sink.Written.Keys.Where(k => k.Partition == p).Select(k => k.Offset).Order().ToArray();
            // Nothing committed unwritten, and everything written was committed: the written set is the committed prefix.
            Assert.Equal(Enumerable.Range(0, (int)end).Select(o => (long)o), written);
        }
        Assert.True(committed.Sum() < total, $"committed {string.Join(",", committed)}: the worker consumed everything before it was stopped");
        Assert.All(sink.Written.Values, n => Assert.Equal(1, n));
    }
}
