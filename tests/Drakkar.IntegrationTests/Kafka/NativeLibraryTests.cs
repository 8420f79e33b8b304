using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.Kafka;

namespace Drakkar.IntegrationTests.Kafka;

[Collection(KafkaCollection.Name)]
public sealed class NativeLibraryTests(KafkaBroker kafka)
{
    [Fact]
    public async Task Confluent_and_the_embedded_broker_share_one_librdkafka_from_the_package()
    {
        var topic = kafka.CreateTopic("native");
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).Build())
        {
            var delivered = await producer.ProduceAsync(topic, new Message<Null, string> { Value = "one" });
            Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
        }

        // Confluent.Kafka 2.16 needs librdkafka >= 2.16 (the OS's 2.0.2 lacks functions it calls).
        Assert.True(Library.Version >= 0x021000ff, $"Confluent.Kafka bound librdkafka {Library.VersionString}");
        var mapped = File.ReadLines("/proc/self/maps")
            .Select(line => line.IndexOf('/', StringComparison.Ordinal) is var slash and >= 0 ? line[slash..] : "")
            .Where(path => Path.GetFileName(path) is var name && !name.Contains("++", StringComparison.Ordinal) &&
                           name.Contains("rdkafka", StringComparison.Ordinal))
            .Distinct()
            .ToList();
        var only = Assert.Single(mapped);
        Assert.Equal(only, KafkaNativeLibrary.LoadedPath);
        Assert.StartsWith(Path.GetFullPath(AppContext.BaseDirectory), only, StringComparison.Ordinal);
    }
}
