using Confluent.Kafka;

namespace Drakkar.IntegrationTests.Support;

/// <summary>What a topic on the test broker holds, read independently of the worker.</summary>
internal static class TopicRecords
{
    /// <summary>Records in every partition of <paramref name="topic"/>; 0 when it does not exist.</summary>
    public static long Count(string brokers, string topic)
    {
        var partitions = PartitionsOf(brokers, topic);
        if (partitions.Count == 0) return 0;
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = brokers, GroupId = $"count-{Guid.NewGuid():N}" }).Build();
        return partitions.Sum(p =>
        {
            var w = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(5));
            return w.High.Value - w.Low.Value;
        });
    }

    /// <summary>Every record of <paramref name="topic"/> (all partitions, from the start).</summary>
    public static List<Message<byte[]?, byte[]?>> ReadAll(string brokers, string topic)
    {
        var records = new List<Message<byte[]?, byte[]?>>();
        var partitions = PartitionsOf(brokers, topic);
        if (partitions.Count == 0) return records;
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = brokers, GroupId = $"read-{Guid.NewGuid():N}", EnablePartitionEof = true,
            // The poison scenario's 10 MB record.
            FetchMaxBytes = 64 << 20, MaxPartitionFetchBytes = 64 << 20,
        }).Build();
        consumer.Assign(partitions.Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var open = partitions.Count;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (open > 0 && DateTime.UtcNow < deadline)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (result is null) continue;
            if (result.IsPartitionEOF) { open--; continue; }
            records.Add(result.Message);
        }
        return records;
    }

    private static List<int> PartitionsOf(string brokers, string topic)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = brokers }).Build();
        return admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics
            .SingleOrDefault(t => t.Topic == topic && t.Error.Code == ErrorCode.NoError)?.Partitions.Select(p => p.PartitionId).ToList() ?? [];
    }
}
