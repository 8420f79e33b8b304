using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Drakkar.IntegrationTests.Kafka;

/// <summary>
/// How the embedded broker (librdkafka's mock cluster) runs classic consumer groups, shown with plain Confluent
/// consumers and no Drakkar code: while a join round is open it refuses every offset commit with
/// REBALANCE_IN_PROGRESS (a Kafka broker accepts a commit from the current generation while it prepares a
/// rebalance), and it holds each round for session.timeout.ms - 1 s. This is why classic-protocol handovers repeat
/// work on the embedded broker (see docs/operations.md, "Scaling and rolling restarts").
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class EmbeddedBrokerGroupTests(KafkaBroker kafka, ITestOutputHelper output)
{
    [Fact]
    public Task Commits_are_refused_while_a_join_round_is_open() => Task.Run(RoundAsync).WaitAsync(TimeSpan.FromSeconds(90));

    private async Task RoundAsync()
    {
        var topic = kafka.CreateTopic("mock-group", partitions: 2);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 2, 20);
        ConsumerConfig Config() => new()
        {
            BootstrapServers = kafka.BootstrapServers, GroupId = $"{topic}-g", EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest, SessionTimeoutMs = 3_000, HeartbeatIntervalMs = 500,
            PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky,
        };
        var first = new ConsumerBuilder<Ignore, Ignore>(Config()).Build();
        first.Subscribe(topic);
        await Eventually.True(() => { first.Consume(100); return first.Assignment.Count == 2; }, TimeSpan.FromSeconds(30), "the first consumer owns both partitions");
        first.Commit([new TopicPartitionOffset(topic, 0, 1)]);

        var second = new ConsumerBuilder<Ignore, Ignore>(Config()).Build();
        var joining = System.Diagnostics.Stopwatch.StartNew();
        second.Subscribe(topic);
        var refusals = new List<ErrorCode>();
        var accepted = 0;
        await Eventually.True(() =>
        {
            first.Consume(50);
            second.Consume(50);
            try
            {
                first.Commit([new TopicPartitionOffset(topic, 0, 2)]);
                accepted++;
            }
            catch (KafkaException e)
            {
                refusals.Add(e.Error.Code);
            }
            return second.Assignment.Count == 1;
        }, TimeSpan.FromSeconds(60), "the second consumer took one partition");
        output.WriteLine($"second member assigned after {joining.Elapsed.TotalSeconds:0.0} s (session 3 s); " +
            $"commits meanwhile: {accepted} accepted, refused: {string.Join(", ", refusals.Distinct())} ×{refusals.Count}");
        // Closed on threads of their own: each close waits for a rebalance the other one serves by polling.
        await Task.WhenAll(Task.Run(second.Close), Task.Run(first.Close)).WaitAsync(TimeSpan.FromSeconds(30));
        second.Dispose();
        first.Dispose();

        Assert.Contains(ErrorCode.RebalanceInProgress, refusals);
    }
}
