using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Sinks;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// A sink destination unavailable for a while (an HTTP receiver answering 503) under each outage policy: with the
/// default <c>on_outage: pause</c> the worker holds the payloads, commits nothing past them, sends nothing to the DLQ
/// and delivers everything once the receiver is back; with <c>dlq</c> the outage's payloads go to the DLQ.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class OutageTests(KafkaBroker kafka)
{
    private const int Partitions = 2, PerPartition = 50;

    /// <summary>One HTTP payload per message, identified by partition and offset.</summary>
    private sealed class WebhookHandler : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("outage"))
            {
                Precomputed = new PrecomputedResult("ok"),
                SourceOffsets = [m.Offset],
            })]);

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group) =>
            ValueTask.FromResult<CollectResult?>(new CollectResult
            {
                Http = { HttpPayload.Of(Reading.Sample((int)group.Message.Offset) with { Id = $"{group.Message.Partition}:{group.Message.Offset}" }) },
            });
    }

    [Fact]
    public async Task With_the_default_policy_an_outage_sends_nothing_to_the_dlq_and_everything_arrives_after_it()
    {
        using var receiver = new HttpReceiver();
        var (topic, group) = await RunOutageAsync(receiver, policy: null);

        var ids = receiver.Requests.Where(r => r.Status == 200).Select(r => IdOf(r.Body)).ToHashSet();
        var dlq = CountRecords($"{topic}_dlq");
        FaultReport.Add("HTTP receiver answering 503, then 200 (on_outage: pause, the default)", $"{Partitions * PerPartition} messages, one HTTP payload each",
            delivered: $"{ids.Count}", dlq: (int)dlq, duplicates: receiver.Requests.Count(r => r.Status == 200) - ids.Count,
            lost: Partitions * PerPartition - ids.Count, recovery: "held, nothing committed during the outage; all delivered after");
        Assert.Equal(0, dlq);
        Assert.Equal(Partitions * PerPartition, ids.Count);
        Assert.Equal([PerPartition, PerPartition], TestWorker.Committed(kafka.BootstrapServers, topic, group, Partitions));
    }

    [Fact]
    public async Task With_on_outage_dlq_the_payloads_of_an_outage_go_to_the_dlq()
    {
        using var receiver = new HttpReceiver();
        var (topic, _) = await RunOutageAsync(receiver, policy: OutagePolicy.Dlq);
        var dlq = CountRecords($"{topic}_dlq");
        var delivered = receiver.Requests.Where(r => r.Status == 200).Select(r => IdOf(r.Body)).ToHashSet().Count;
        FaultReport.Add("HTTP receiver answering 503, then 200 (on_outage: dlq)", $"{Partitions * PerPartition} messages, one HTTP payload each",
            delivered: $"{delivered}", dlq: (int)dlq, duplicates: Math.Max(0, delivered + (int)dlq - Partitions * PerPartition),
            lost: Math.Max(0, Partitions * PerPartition - delivered - (int)dlq),
            recovery: "the outage's payloads dead-lettered (Python Drakkar's behaviour)");
        Assert.Equal(Partitions * PerPartition, delivered + dlq);
        Assert.True(dlq > 0, "the outage's payloads were dead-lettered");
    }

    /// <summary>
    /// The receiver answers 503 while every message is consumed; while it does, nothing may be committed (policy
    /// pause). Then it answers 200 again and the worker finishes.
    /// </summary>
    private async Task<(string Topic, string Group)> RunOutageAsync(HttpReceiver receiver, OutagePolicy? policy)
    {
        var topic = kafka.CreateTopic("outage", Partitions);
        var group = $"{topic}-g";
        receiver.RespondWith(503);
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c =>
        {
            c.Sinks.Http["hook"] = new HttpSinkConfig { Url = receiver.Url, MaxRetries = 0 };
            if (policy is { } p) c.Sinks.Http["hook"].OnOutage = p;
        });
        await using var worker = await TestWorker.StartAsync(new WebhookHandler(), config);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, Partitions, Partitions * PerPartition);

        await Eventually.True(() => receiver.Requests.Count(r => r.Status == 503) >= 3, TimeSpan.FromSeconds(30), "the receiver refused deliveries");
        await Task.Delay(TimeSpan.FromSeconds(3));
        if (policy is null)
            Assert.True(TestWorker.Committed(kafka.BootstrapServers, topic, group, Partitions).All(c => c <= 0),
                "nothing is committed while the payloads are held");
        receiver.RespondWith(200);
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, Partitions).All(c => c == PerPartition),
            TimeSpan.FromSeconds(60), "every message committed after the outage");
        await worker.StopAsync();
        return (topic, group);
    }

    private static string IdOf(string body) => System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;

    private long CountRecords(string topic) => TopicRecords.Count(kafka.BootstrapServers, topic);
}
