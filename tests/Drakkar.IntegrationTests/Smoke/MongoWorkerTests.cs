using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Smoke;

/// <summary>
/// A worker built the way a MongoDB user builds one (runtime + Drakkar.Sinks.MongoDB + AddMongoDB()), run as its own
/// process, JIT and Native AOT: it consumes readings and inserts them through the official driver into the
/// wire-protocol test server.
/// </summary>
[Trait(NativeAotTrait.Name, NativeAotTrait.MongoWorker)]
[Collection(KafkaCollection.Name)]
public sealed class MongoWorkerTests(KafkaBroker kafka) : IDisposable
{
    private const string AotVariable = "DRAKKAR_MONGO_WORKER_AOT";
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-mongo-worker-").FullName;
    private readonly MongoWireServer _mongo = new("worker", "aot-mongo-pass");

    public void Dispose()
    {
        _mongo.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    // Both builds always run: without the AOT binary the AOT case fails and says how to get it, rather than vanishing.
    public static TheoryData<bool> Builds() => new() { false, true };

    [Theory]
    [MemberData(nameof(Builds))]
    public async Task Every_reading_becomes_one_document_inserted_through_the_driver_with_scram_auth(bool aot)
    {
        const int total = 40;
        var topic = kafka.CreateTopic(aot ? "mongo-aot" : "mongo-jit", partitions: 2);
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 2, total,
            i => $$"""{"id":"reading-{{i}}","count":{{i}},"at":"2026-11-30T12:00:00+00:00","tags":["t{{i}}","x"]}""");
        var config = Path.Combine(_dir, "mongo.yaml");
        await File.WriteAllTextAsync(config, $$"""
            kafka: { brokers: "{{kafka.BootstrapServers}}", source_topic: {{topic}}, consumer_group: {{group}}, commit_interval_ms: 100 }
            sinks:
              mongo:
                archive: { uri: "{{_mongo.Uri("worker:${MONGO_PASSWORD}")}}", database: telemetry }
            metrics: { enabled: false }
            """);
        var binary = SampleBinary.PathOf("tests/Drakkar.MongoWorker", "drakkar-mongo-worker", AotVariable, aot);
        Assert.True(binary is not null && File.Exists(binary),
            $"no {(aot ? "Native AOT" : "JIT")} MongoDB worker at '{binary}': build/test.sh publishes it and sets {AotVariable}");

        using var worker = SampleBinary.Start(binary, ["--config", config], _dir, new Dictionary<string, string> { ["MONGO_PASSWORD"] = "aot-mongo-pass" });
        try
        {
            await Eventually.True(() => _mongo.Stored("telemetry", "readings").Count >= total, TimeSpan.FromSeconds(60), $"{total} documents stored");
        }
        catch (TimeoutException e)
        {
            Assert.Fail($"{e.Message} (stored: {_mongo.Stored("telemetry", "readings").Count}); the worker's stderr:\n{worker.Stderr}");
        }
        worker.Signal(Posix.SigTerm);
        Assert.True(worker.WaitForExit(TimeSpan.FromSeconds(20)), $"still running 20s after SIGTERM; stderr:\n{worker.Stderr}");
        Assert.Equal(0, worker.ExitCode);

        var stored = _mongo.Stored("telemetry", "readings");
        Assert.Equal(Enumerable.Range(0, total).Select(i => $"reading-{i}").Order(), stored.Select(d => d["id"].AsString).Order());
        var seventh = stored.Single(d => d["id"] == "reading-7");
        Assert.Equal(7, seventh["count"].AsInt32);
        Assert.Equal(new DateTime(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc), seventh["at"].ToUniversalTime());
        Assert.Equal(["t7", "x"], seventh["tags"].AsBsonArray.Select(t => t.AsString));
        Assert.Contains("saslContinue", _mongo.Commands);
        Assert.DoesNotContain("aot-mongo-pass", worker.Stderr);
    }
}
