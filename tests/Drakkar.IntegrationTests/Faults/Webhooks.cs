using System.Text.Json;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Sinks;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>One HTTP payload per message, its <c>id</c> the message's partition and offset (<c>"1:42"</c>).</summary>
internal sealed class WebhookHandler : DrakkarHandler
{
    public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
        ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("webhook"))
        {
            Precomputed = new PrecomputedResult("ok"),
            SourceOffsets = [m.Offset],
        })]);

    public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group) =>
        ValueTask.FromResult<CollectResult?>(new CollectResult
        {
            Http = { HttpPayload.Of(Reading.Sample((int)group.Message.Offset) with { Id = $"{group.Message.Partition}:{group.Message.Offset}" }) },
        });

    /// <summary>The id of the message a request's body came from.</summary>
    public static string IdOf(string body) => JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;

    /// <summary>Records in every partition of <paramref name="topic"/>; 0 when it does not exist.</summary>
    public static long RecordsIn(string bootstrapServers, string topic)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrapServers }).Build();
        var partitions = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.SingleOrDefault(t => t.Topic == topic && t.Error.Code == ErrorCode.NoError)?.Partitions;
        if (partitions is null) return 0;
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig
        {
            BootstrapServers = bootstrapServers, GroupId = $"count-{Guid.NewGuid():N}",
        }).Build();
        return partitions.Sum(p =>
        {
            var w = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p.PartitionId), TimeSpan.FromSeconds(5));
            return w.High.Value - w.Low.Value;
        });
    }
}
