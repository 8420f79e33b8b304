using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

[Collection(KafkaCollection.Name)]
public sealed class BlockedPartitionTests(KafkaBroker kafka)
{
    /// <summary>Arrange fails for offset 1, so that message's window goes to the DLQ.</summary>
    private sealed class FailingOnOne : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            messages.Any(m => m.Offset == 1)
                ? throw new InvalidOperationException("cannot arrange offset 1")
                : ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    [Fact]
    public async Task A_dead_letter_the_broker_refuses_blocks_its_partition_visibly_and_the_worker_recovers_when_it_is_taken()
    {
        var topic = kafka.CreateTopic("blocked");
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 3);
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c => c.Executor.WindowSize = 1);

        // Every produce is refused as too large: the DLQ cuts the record down to its floor, then reports the partition
        // blocked (the only producer in this worker is the DLQ's).
        kafka.Broker.PushRequestErrors(0, [.. Enumerable.Repeat(Confluent.Kafka.ErrorCode.MsgSizeTooLarge, 8)]);
        await using var worker = await TestWorker.StartAsync(new FailingOnOne(), config);
        try
        {
            var readiness = await Eventually.Get(() => worker.Readiness, r => r!.Reasons.Any(x => x.Contains("partition blocked", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(60), "/readyz reporting the blocked partition");
            Assert.False(readiness!.IsReady);
            Assert.Contains(readiness.Reasons, r => r.Contains($"{topic}[0] offsets 1", StringComparison.Ordinal));
            // Offset 0 is done; nothing is committed past the record the DLQ has not taken.
            await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 1)[0] == 1,
                TimeSpan.FromSeconds(30), "offset 0 committed");
            Assert.Equal(1, TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 1)[0]);
        }
        finally
        {
            kafka.Broker.ClearRequestErrors(0);
        }

        // The blocked write retries every 30 s; once the broker takes it, the partition goes on and the worker is ready.
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 1)[0] == 3,
            TimeSpan.FromSeconds(90), "every offset committed after the DLQ took the record");
        await Eventually.True(() => worker.Readiness.IsReady, TimeSpan.FromSeconds(10), "ready again");
        await worker.StopAsync();
    }
}
