using Drakkar.Kafka.Embedded;

namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>The embedded Kafka-protocol broker, shared by a test collection; each test makes its own topics.</summary>
public sealed class KafkaBroker : IDisposable
{
    private int _topicCounter;

    public KafkaBroker() => Broker = StartEmbedded();

    /// <summary>
    /// An embedded broker whose classic groups assign their first join round at once instead of waiting 3 s for more
    /// members: every test starts its workers one after another (each waits for its assignment), so no first round
    /// ever had a second member to wait for. Later rounds still wait as before (session.timeout.ms - 1 s on the mock).
    /// </summary>
    internal static EmbeddedKafkaBroker StartEmbedded()
    {
        var broker = EmbeddedKafkaBroker.Start();
        broker.SetGroupInitialRebalanceDelay(TimeSpan.Zero);
        return broker;
    }

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
