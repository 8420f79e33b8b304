using Drakkar.Kafka.Embedded;

namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>The embedded Kafka-protocol broker, shared by a test collection; each test makes its own topics.</summary>
public sealed class KafkaBroker : IDisposable
{
    private int _topicCounter;

    public KafkaBroker() => Broker = EmbeddedKafkaBroker.Start();

    internal EmbeddedKafkaBroker Broker { get; }

    public string BootstrapServers => Broker.BootstrapServers;

    /// <summary>Creates a topic with a unique name (prefix + counter) and returns the name.</summary>
    public string CreateTopic(string prefix, int partitions = 1)
    {
        var name = $"{prefix}-{Interlocked.Increment(ref _topicCounter)}";
        Broker.CreateTopic(name, partitions);
        return name;
    }

    public void Dispose() => Broker.Dispose();
}

[CollectionDefinition(Name)]
public sealed class KafkaCollection : ICollectionFixture<KafkaBroker>
{
    public const string Name = "kafka";
}
