using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>A worker started before its source topic exists: the wait is reported plainly and the work starts once the topic does.</summary>
[Collection(KafkaCollection.Name)]
public sealed class MissingSourceTopicTests(KafkaBroker kafka)
{
    [Fact]
    public async Task A_source_topic_that_does_not_exist_yet_is_a_warning_without_a_stack_trace_and_its_messages_are_processed_once_it_does()
    {
        var topic = $"created-later-{Guid.NewGuid():N}";
        var handler = new RecordingHandler(realProcesses: false);
        var logs = new LogCapture();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c => c.Kafka.CommitIntervalMs = 200);

        await using var worker = await TestWorker.StartAsync(handler, config, loggers: logs);
        await Eventually.True(() => logs.Containing("Consume failed").Length > 0, TimeSpan.FromSeconds(30), "the missing topic reported");

        var warning = logs.Containing("Consume failed")[0];
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, warning.Level);
        Assert.Null(warning.Exception);
        Assert.Contains(topic, warning.Message, StringComparison.Ordinal);

        kafka.Broker.CreateTopic(topic, 1);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 3);
        await Eventually.True(() => handler.Settled.Count == 3, TimeSpan.FromSeconds(60), "the messages processed once the topic exists");
        await worker.StopAsync();
    }
}
