using System.Collections.Concurrent;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>An input payload whose own constructor refuses some values (as validation code does).</summary>
[Payload]
public sealed partial class Amount
{
    public Amount(int value)
    {
        if (value < 0) throw new OverflowException($"amount {value} is negative");
        Value = value;
    }

    public int Value { get; }
}

[Collection(KafkaCollection.Name)]
public sealed class UndecodableInputTests(KafkaBroker kafka)
{
    private sealed class AmountHandler : DrakkarHandler<Amount>
    {
        public ConcurrentDictionary<long, string?> Seen { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<Amount>> messages, PendingContext pending)
        {
            foreach (var message in messages) Seen[message.Offset] = message.DecodeError;
            return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
        }
    }

    [Fact]
    public async Task A_value_the_payload_refuses_reaches_arrange_as_a_decode_error_and_nothing_is_skipped()
    {
        var topic = kafka.CreateTopic("amounts");
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 3, i => i == 1 ? "{\"value\":-5}" : $"{{\"value\":{i}}}");
        var handler = new AmountHandler();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g");
        await using var worker = await TestWorker.StartAsync(handler, config);

        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 1)[0] == 3,
            TimeSpan.FromSeconds(60), "the partition committed to its end");
        Assert.Equal([0L, 1L, 2L], handler.Seen.Keys.Order());
        Assert.Null(handler.Seen[0]);
        Assert.Contains("OverflowException", handler.Seen[1]);
        Assert.Null(handler.Seen[2]);
        await worker.StopAsync();
    }
}
