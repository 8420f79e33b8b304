using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Kafka;
using Drakkar.IntegrationTests.Support;
using Drakkar.Kafka.Embedded;
using Xunit.Abstractions;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// <c>kafka.exactly_once</c> across a crash: a worker is abandoned mid-stream without its final commit (its
/// transactional producer and consumer simply go away, as at kill -9 between two commit ticks) and a replacement with
/// the same worker id (so the same transactional id) finishes the stream. Nothing may be lost. Zero duplicates for a
/// <c>read_committed</c> reader is asserted where the broker keeps transactional offsets and hides aborted records;
/// the embedded broker (librdkafka's mock cluster) does neither, which the test establishes first and reports.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ExactlyOnceFaultTests(ITestOutputHelper output) : IDisposable
{
    private const int Partitions = 2, Messages = 600;

    private readonly EmbeddedKafkaBroker _broker = KafkaBroker.StartEmbedded();

    public void Dispose() => _broker.Dispose();

    [Fact]
    public async Task A_worker_abandoned_mid_stream_and_restarted_loses_nothing_under_exactly_once()
    {
        var honoured = TransactionSupport.Probe(_broker);
        const string input = "eos-crash-in", sinkTopic = "eos-crash-out";
        _broker.CreateTopic(input, Partitions);
        _broker.CreateTopic(sinkTopic, Partitions);
        var config = ExactlyOnceTests.ExactlyOnceConfig(_broker.BootstrapServers, input, sinkTopic);

        var first = await TestWorker.StartAsync(new EchoToKafkaHandler(), config, "eos-crash");
        using var producing = new CancellationTokenSource();
        var producer = Task.Run(async () =>
        {
            using var p = new ProducerBuilder<string?, string>(new ProducerConfig { BootstrapServers = _broker.BootstrapServers, LingerMs = 1 }).Build();
            for (var i = 0; i < Messages; i++)
            {
                p.Produce(new TopicPartition(input, i % Partitions), new Message<string?, string> { Key = $"k{i}", Value = $"m-{i}" });
                await Task.Delay(5);
            }
            p.Flush(TimeSpan.FromSeconds(30));
        });
        await Eventually.True(() => SinkTopic.Ids(_broker.BootstrapServers, sinkTopic, IsolationLevel.ReadCommitted).Count >= Messages / 3,
            TimeSpan.FromSeconds(60), "the first worker answered a third of the stream");
        var beforeCrash = first.Metrics.KafkaTransactions.Value("committed");
        // No StopAsync: no drain, no final commit, no leave.
        await first.DisposeAsync();

        await using var second = await TestWorker.StartAsync(new EchoToKafkaHandler(), config, "eos-crash");
        await producer;
        await Eventually.True(() => SinkTopic.Ids(_broker.BootstrapServers, sinkTopic, IsolationLevel.ReadCommitted).Distinct().Count() >= Messages,
            TimeSpan.FromSeconds(90), "every input answered after the restart");
        await second.StopAsync();

        var committed = SinkTopic.Ids(_broker.BootstrapServers, sinkTopic, IsolationLevel.ReadCommitted);
        var uncommitted = SinkTopic.Ids(_broker.BootstrapServers, sinkTopic, IsolationLevel.ReadUncommitted);
        var expected = Enumerable.Range(0, Messages).Select(i => $"{i % Partitions}:{i / Partitions}").ToHashSet();
        var lost = expected.Except(committed).Count();
        var duplicates = committed.Count - committed.Distinct().Count();
        output.WriteLine($"{Messages} in; read_committed {committed.Count} records ({duplicates} duplicates), read_uncommitted {uncommitted.Count}; " +
            $"{beforeCrash} transactions before the crash; broker: {honoured}");
        FaultReport.Add("worker abandoned mid-stream, restarted with the same id (kafka.exactly_once, Kafka sink only)",
            $"{Messages} messages, {Partitions} partitions, in-process worker",
            delivered: $"{committed.Distinct().Count()} (read_committed: {committed.Count} records; read_uncommitted: {uncommitted.Count})",
            dlq: 0, duplicates, lost,
            recovery: honoured.Complete
                ? "the restarted worker fenced the old transactional id and went on from the transactional offsets"
                : $"not measurable here: {honoured} (librdkafka's mock cluster), so the restart redid the whole stream; on Kafka the restart resumes at the offsets committed in the last transaction");

        Assert.True(lost == 0, $"{lost} inputs never answered");
        if (honoured.Complete) Assert.True(duplicates == 0, $"{duplicates} duplicates seen by read_committed");
    }
}

/// <summary>What a broker does with transactions, found out with a transaction of its own.</summary>
internal sealed record TransactionSupport(bool StoresOffsets, bool HidesAborted)
{
    /// <summary>Both, as Kafka does: exactly-once is then observable end to end.</summary>
    public bool Complete => StoresOffsets && HidesAborted;

    public override string ToString() =>
        Complete ? "transactional offsets stored, aborted records hidden"
            : $"transactional offsets {(StoresOffsets ? "stored" : "not stored")}, aborted records {(HidesAborted ? "hidden" : "visible to read_committed")}";

    /// <summary>Commits offset 1 of a one-record topic in one transaction and aborts a record in another.</summary>
    public static TransactionSupport Probe(EmbeddedKafkaBroker broker)
    {
        var (source, sink, group) = ("probe-source", "probe-sink", "probe-group");
        broker.CreateTopic(source);
        broker.CreateTopic(sink);
        var brokers = broker.BootstrapServers;
        using (var p = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = brokers }).Build())
        {
            p.Produce(source, new Message<Null, string> { Value = "x" });
            p.Flush(TimeSpan.FromSeconds(10));
        }
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig
        {
            BootstrapServers = brokers, GroupId = group, AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false,
        }).Build();
        consumer.Subscribe(source);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (consumer.Consume(TimeSpan.FromMilliseconds(200)) is null && DateTime.UtcNow < deadline)
        {
        }
        using var transactional = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = brokers, TransactionalId = "probe" }).Build();
        transactional.InitTransactions(TimeSpan.FromSeconds(10));
        transactional.BeginTransaction();
        transactional.Produce(sink, new Message<Null, string> { Value = "{\"id\":\"committed\"}" });
        transactional.SendOffsetsToTransaction([new TopicPartitionOffset(source, 0, 1)], consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(10));
        transactional.CommitTransaction(TimeSpan.FromSeconds(10));
        transactional.BeginTransaction();
        transactional.Produce(sink, new Message<Null, string> { Value = "{\"id\":\"aborted\"}" });
        transactional.Flush(TimeSpan.FromSeconds(10));
        transactional.AbortTransaction(TimeSpan.FromSeconds(10));
        var stored = consumer.Committed([new TopicPartition(source, 0)], TimeSpan.FromSeconds(10)).Single().Offset.Value == 1;
        consumer.Close();
        return new TransactionSupport(stored, !SinkTopic.Ids(brokers, sink, IsolationLevel.ReadCommitted).Contains("aborted"));
    }
}
