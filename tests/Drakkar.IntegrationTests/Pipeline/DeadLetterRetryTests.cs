using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Sinks;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>
/// docs/dlq-and-replay.md, "a failed DLQ write holds the offset" (SPEC S15), through the whole worker: while the DLQ
/// refuses a record, that message and every later offset stay uncommitted, the write is retried on a doubling backoff,
/// and the retrying ends when the partition's work is abandoned.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class DeadLetterRetryTests(KafkaBroker kafka)
{
    private const short ProduceApi = 0;
    private const int Messages = 6;

    /// <summary>
    /// Arrange fails for offset 1 of every partition (its window goes to the DLQ); every other message completes with
    /// no task, or with <paramref name="marking"/> with a marker payload for the <c>pushy</c> batching sink (offset 0's
    /// only once <paramref name="markZeroWhen"/> holds, when given).
    /// </summary>
    private sealed class FailingOnOne(bool marking = false, Func<bool>? markZeroWhen = null) : DrakkarHandler
    {
        public ConcurrentDictionary<(int Partition, long Offset), int> Arranged { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
        {
            foreach (var m in messages) Arranged.AddOrUpdate((m.Partition, m.Offset), 1, (_, n) => n + 1);
            if (messages.Any(m => m.Offset == 1)) throw new InvalidOperationException("cannot arrange offset 1");
            return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>(marking
                ? [.. messages.Select(m => new ExecutorTask(TaskId.New("mark"))
                {
                    Precomputed = new PrecomputedResult($"{m.Partition}:{m.Offset}"),
                    SourceOffsets = [m.Offset],
                })]
                : []);
        }

        public override async ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
        {
            var parts = result.Stdout.Split(':');
            while (parts[1] == "0" && markZeroWhen is not null && !markZeroWhen()) await Task.Delay(20);
            return new CollectResult
            {
                Custom = { CustomPayload.Of("pushy", new Marker(int.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture))) },
            };
        }
    }

    private (string Topic, string Dlq, DrakkarConfig Config) Setup(string name, Action<DrakkarConfig>? adjust = null, int partitions = 1)
    {
        var topic = kafka.CreateTopic(name, partitions);
        var dlq = kafka.CreateTopic($"{name}-dlq");
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Executor.WindowSize = 1;
            c.Dlq.Topic = dlq;
            adjust?.Invoke(c);
        });
        return (topic, dlq, config);
    }

    private long Committed(DrakkarConfig config, int partition = 0) =>
        TestWorker.Committed(kafka.BootstrapServers, config.Kafka.SourceTopic, config.Kafka.ConsumerGroup, partition + 1)[partition];

    private long RecordsIn(string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "watermarks" }).Build();
        return consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10)).High.Value;
    }

    [Fact]
    public async Task While_the_dlq_refuses_a_record_nothing_is_committed_past_it_and_the_write_is_retried_on_a_doubling_backoff_up_to_5s()
    {
        var (topic, dlq, config) = Setup("dlq-retry");
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, Messages);
        var handler = new FailingOnOne();
        var logs = new LogCapture();
        var stored = () => logs.Containing("succeeded after").Length > 0;
        var watcher = new CommitWatcher(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 1, (_, o) => o != 1 || stored(),
            "stored in the DLQ (offset 1) or done");

        // The broker fails the next seven produce requests (the DLQ's producer is the worker's only one): a temporary
        // error, which librdkafka reports at once instead of retrying it until message.timeout.ms.
        const int refusals = 7;
        kafka.Broker.PushRequestErrors(ProduceApi, [.. Enumerable.Repeat(ErrorCode.Unknown, refusals)]);
        try
        {
            await using var worker = await TestWorker.StartAsync(handler, config, loggers: logs);
            // Two failures in, the later messages are long done, yet the watermark waits at the dead letter.
            await Eventually.True(() => logs.Containing("offsets stay uncommitted").Length >= 2 && handler.Arranged.ContainsKey((0, Messages - 1)),
                TimeSpan.FromSeconds(30), "the DLQ write failing while the later messages complete");
            await Eventually.True(() => Committed(config) == 1, TimeSpan.FromSeconds(10), "offset 0 committed");
            Assert.False(stored());
            Assert.Equal(1, Committed(config));
            Assert.Equal(0, RecordsIn(dlq));

            await Eventually.True(stored, TimeSpan.FromSeconds(40), "the DLQ write succeeding once the broker takes it");
            await Eventually.True(() => Committed(config) == Messages, TimeSpan.FromSeconds(10), "every offset committed");
            await worker.StopAsync();
        }
        finally
        {
            kafka.Broker.ClearRequestErrors(ProduceApi);
        }
        await watcher.StopAsync();

        Assert.Empty(watcher.Violations);
        Assert.Equal(1, RecordsIn(dlq));
        var failures = logs.Containing("offsets stay uncommitted");
        Assert.Equal(refusals, failures.Length);
        Assert.All(failures, f => Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Critical, f.Level));
        // 100 ms, doubling, capped at 5 s.
        double[] backoffs = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5];
        Assert.Equal(backoffs, failures.Select(f => double.Parse(f.Message.Split("retrying in ")[1].Split('s')[0], CultureInfo.InvariantCulture)));
        // And the worker really waited that long between attempts (generously bounded above on a busy machine).
        var attempts = failures.Select(f => f.Timestamp).Append(logs.Containing("succeeded after")[0].Timestamp).ToArray();
        for (var i = 0; i < backoffs.Length; i++)
        {
            var gap = Stopwatch.GetElapsedTime(attempts[i], attempts[i + 1]).TotalSeconds;
            Assert.InRange(gap, backoffs[i] * 0.9, backoffs[i] + 3);
        }
    }

    [Fact]
    public async Task A_dead_letter_still_failing_at_shutdown_is_given_up_at_the_drain_timeout_and_the_next_owner_writes_it()
    {
        var (topic, dlq, config) = Setup("dlq-abandoned", c => c.Executor.DrainTimeoutSeconds = 2);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, Messages);
        var logs = new LogCapture();

        kafka.Broker.PushRequestErrors(ProduceApi, [.. Enumerable.Repeat(ErrorCode.Unknown, 1000)]);
        TimeSpan stopping;
        try
        {
            var worker = await TestWorker.StartAsync(new FailingOnOne(), config, loggers: logs);
            await Eventually.True(() => logs.Containing("offsets stay uncommitted").Length >= 3, TimeSpan.FromSeconds(30), "the DLQ write failing");
            await Eventually.True(() => Committed(config) == 1, TimeSpan.FromSeconds(10), "offset 0 committed");

            var clock = Stopwatch.StartNew();
            await worker.StopAsync();
            stopping = clock.Elapsed;
        }
        finally
        {
            kafka.Broker.ClearRequestErrors(ProduceApi);
        }

        // The drain waited for the dead letter — its 2 s bound less the reserve for the commit and the leave (0.4 s) —
        // then gave it up: the stop ended, with nothing committed past it.
        Assert.InRange(stopping.TotalSeconds, 1.5, 12);
        Assert.Equal(1, Committed(config));
        Assert.Equal(0, RecordsIn(dlq));

        // The next owner consumes from offset 1, arranges it again and, with the DLQ healthy, stores it and moves on.
        var next = new FailingOnOne();
        await using var successor = await TestWorker.StartAsync(next, config, "successor");
        await Eventually.True(() => Committed(config) == Messages, TimeSpan.FromSeconds(30), "the next owner committing every offset");
        Assert.True(next.Arranged.ContainsKey((0, 1)));
        Assert.False(next.Arranged.ContainsKey((0, 0)));
        Assert.Equal(1, RecordsIn(dlq));
        await successor.StopAsync();
    }

    /// <summary>
    /// How long a write loop that should have ended would need to show itself: its next attempt comes at most 5 s
    /// (the backoff's cap) after the DLQ takes records again.
    /// </summary>
    private static readonly TimeSpan ZombieWindow = TimeSpan.FromSeconds(6);

    [Fact]
    public async Task A_dead_letter_retrying_on_a_revoked_partition_is_given_up_at_the_drain_timeout_and_written_once_by_the_next_owner()
    {
        const int partitions = 2;
        var (topic, dlq, config) = Setup("dlq-revoked", c => c.Executor.DrainTimeoutSeconds = 2, partitions);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, partitions, Messages * partitions);
        var first = new FailingOnOne();
        var second = new FailingOnOne();
        var firstLogs = new LogCapture();
        var secondLogs = new LogCapture();

        kafka.Broker.PushRequestErrors(ProduceApi, [.. Enumerable.Repeat(ErrorCode.Unknown, 1000)]);
        try
        {
            await using var workerA = await TestWorker.StartAsync(first, config, "worker-a", loggers: firstLogs);
            await Eventually.True(() => Enumerable.Range(0, partitions).All(p => firstLogs.Containing($"partition {p}, failure 2").Length > 0),
                TimeSpan.FromSeconds(30), "A's DLQ writes failing on both partitions");

            await using var workerB = await TestWorker.StartAsync(second, config, "worker-b", loggers: secondLogs);
            await Eventually.True(() => workerB.AssignedPartitions.Count == 1, TimeSpan.FromSeconds(60), "B taking one partition over");
            var moved = Assert.Single(workerB.AssignedPartitions);
            // A's drain of the moved partition waited its bound for the dead letter, then gave it up: the handover
            // happened with the write still failing, nothing committed past it.
            Assert.Single(firstLogs.Containing($"Drain of {topic}[{moved}] timed out"));
            Assert.Equal(1, Committed(config, moved));
            await Eventually.True(() => secondLogs.Containing($"partition {moved}, failure 1").Length > 0, TimeSpan.FromSeconds(30),
                "B retrying the moved partition's dead letter");

            kafka.Broker.ClearRequestErrors(ProduceApi);
            await Eventually.True(() => Enumerable.Range(0, partitions).All(p => Committed(config, p) == Messages), TimeSpan.FromSeconds(30),
                "every offset of both partitions committed");
            await Task.Delay(ZombieWindow);
            // One dead letter per partition: A's write loop for the moved partition ended with the handover.
            Assert.Equal(partitions, RecordsIn(dlq));
            await Task.WhenAll(workerA.StopAsync(), workerB.StopAsync());
        }
        finally
        {
            kafka.Broker.ClearRequestErrors(ProduceApi);
        }
    }

    [Fact]
    public async Task A_dead_letter_retrying_on_a_lost_partition_is_given_up_at_once_and_written_once_after_rejoining()
    {
        var (topic, dlq, config) = Setup("dlq-lost");
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, Messages);
        var handler = new FailingOnOne();
        var logs = new LogCapture();

        kafka.Broker.PushRequestErrors(ProduceApi, [.. Enumerable.Repeat(ErrorCode.Unknown, 1000)]);
        try
        {
            await using var worker = await TestWorker.StartAsync(handler, config, loggers: logs);
            await Eventually.True(() => logs.Containing("offsets stay uncommitted").Length >= 2, TimeSpan.FromSeconds(30), "the DLQ write failing");
            await Eventually.True(() => Committed(config) == 1, TimeSpan.FromSeconds(10), "offset 0 committed");

            // The coordinator goes silent for longer than the session timeout: the member counts its partition lost.
            kafka.Broker.SetBrokerDown();
            try
            {
                await Eventually.True(() => logs.Containing("Partitions lost").Length > 0, TimeSpan.FromSeconds(30), "the partition lost");
            }
            finally
            {
                kafka.Broker.SetBrokerUp();
            }
            Assert.Equal(1, Committed(config));

            // Back in the group the partition is consumed from offset 1 again; its dead letter is retried there.
            await Eventually.True(() => handler.Arranged.GetValueOrDefault((0, 1)) >= 2, TimeSpan.FromSeconds(60), "offset 1 arranged again after rejoining");
            kafka.Broker.ClearRequestErrors(ProduceApi);
            await Eventually.True(() => Committed(config) == Messages, TimeSpan.FromSeconds(30), "every offset committed");
            await Task.Delay(ZombieWindow);
            // One dead letter: the write loop of the lost partition's work ended when the partition was lost.
            Assert.Equal(1, RecordsIn(dlq));
            await worker.StopAsync();
        }
        finally
        {
            kafka.Broker.ClearRequestErrors(ProduceApi);
        }
    }

    [Fact]
    public async Task A_dead_letter_retrying_on_a_rewound_partition_is_given_up_and_written_once_by_the_redone_work()
    {
        var logs = new LogCapture();
        // Offset 0 completes only once offset 1's DLQ write is failing; the flush before committing it fails: the
        // partition rewinds while the write is being retried.
        var sink = new PushyBatchingSink(refusals: 1, () => new IOException("disk full"));
        var (topic, dlq, config) = Setup("dlq-rewound", c => c.Sinks.Custom["pushy"] = new() { ["main"] = new CustomSinkConfig() });
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, Messages);
        var handler = new FailingOnOne(marking: true, markZeroWhen: () => logs.Containing("offsets stay uncommitted").Length >= 2);

        kafka.Broker.PushRequestErrors(ProduceApi, [.. Enumerable.Repeat(ErrorCode.Unknown, 1000)]);
        try
        {
            await using var worker = await TestWorker.StartAsync(handler, config, loggers: logs,
                plugins: new SinkRegistry().Register("pushy", _ => sink));
            await Eventually.True(() => sink.Refused == 1, TimeSpan.FromSeconds(30), "the flush refused while the DLQ write fails");
            await Eventually.True(() => handler.Arranged.GetValueOrDefault((0, 1)) >= 2, TimeSpan.FromSeconds(30), "offset 1 arranged again after the rewind");
            Assert.Empty(logs.Containing("succeeded after"));

            kafka.Broker.ClearRequestErrors(ProduceApi);
            await Eventually.True(() => Committed(config) == Messages, TimeSpan.FromSeconds(30), "every offset committed");
            await Task.Delay(ZombieWindow);
            // One dead letter: the write loop of the rewound work ended with the rewind; the redone work wrote it.
            Assert.Equal(1, RecordsIn(dlq));
            Assert.Equal(Messages - 1, sink.Written.Count);
            await worker.StopAsync();
        }
        finally
        {
            kafka.Broker.ClearRequestErrors(ProduceApi);
        }
    }
}
