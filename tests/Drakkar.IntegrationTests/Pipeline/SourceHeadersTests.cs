using System.Collections.Concurrent;
using System.Text;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>A record's headers reach <c>Arrange</c> in order, repeated names kept, and never with a null value.</summary>
[Collection(KafkaCollection.Name)]
public sealed class SourceHeadersTests(KafkaBroker kafka)
{
    private sealed class HeaderRecordingHandler : DrakkarHandler
    {
        public ConcurrentQueue<IReadOnlyList<KeyValuePair<string, byte[]>>> Seen { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
        {
            foreach (var message in messages) Seen.Enqueue(message.Headers);
            return Tasks([]);
        }
    }

    [Fact]
    public async Task A_header_sent_without_a_value_reads_as_an_empty_array_and_the_others_as_sent()
    {
        var topic = kafka.CreateTopic("source-headers");
        using (var producer = new ProducerBuilder<string?, string>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).Build())
        {
            var headers = new Headers
            {
                { "trace", Encoding.UTF8.GetBytes("abc") },
                { "empty", [] },
                { "novalue", null },
                { "trace", [0xff, 0x00] },
            };
            await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<string?, string> { Value = "v", Headers = headers });
        }
        var handler = new HeaderRecordingHandler();

        await using var worker = await TestWorker.StartAsync(handler, TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g"));
        await Eventually.True(() => !handler.Seen.IsEmpty, TimeSpan.FromSeconds(30), "the message arranged");
        await worker.StopAsync();

        var seen = Assert.Single(handler.Seen);
        // Before, the header without a value arrived as null, though the type says byte[]: h.Value.Length threw.
        Assert.Equal(["trace=616263", "empty=", "novalue=", "trace=FF00"], seen.Select(h => $"{h.Key}={Convert.ToHexString(h.Value)}"));
    }
}
