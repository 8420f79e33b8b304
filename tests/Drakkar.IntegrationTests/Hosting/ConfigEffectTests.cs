using System.Text.Json;
using Confluent.Kafka;
using Drakkar.Hosting;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Hosting;

/// <summary>Keys whose effect is only visible on a running worker: <c>logging.output</c>, <c>logging.level</c>, and the embedded broker's partitions.</summary>
[Collection(KafkaCollection.Name)]
public sealed class ConfigEffectTests(KafkaBroker kafka) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-config-effect-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Arrange fails for every window, which the worker logs at error level.</summary>
    private sealed class FailingHandler : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            throw new InvalidOperationException("arrange refused");
    }

    /// <summary>A worker that logs as its configuration says (no test logger), run until it has consumed the topic.</summary>
    private async Task RunAsync(string level, string topic)
    {
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-{level}", c =>
        {
            c.Logging.Output = Path.Combine(_dir, "logs", "{worker_id}", "worker.log");
            c.Logging.Level = level;
        });
        var defaults = DrakkarApp.DefaultParts();
        var worker = await WorkerHost.StartAsync(new FailingHandler(), config, "w-7", new WorkerParts { Executor = defaults.Executor, Delivery = defaults.Delivery },
            CancellationToken.None);
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 1)[0] == 1, TimeSpan.FromSeconds(30),
            "the message dead-lettered and committed");
        await worker.StopAsync();
    }

    [Fact]
    public async Task Logs_go_to_the_file_logging_output_names_with_worker_id_expanded_appended_at_the_configured_level()
    {
        var topic = kafka.CreateTopic("logging-output");
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 1);
        var file = Path.Combine(_dir, "logs", "w-7", "worker.log");

        await RunAsync("INFO", topic);
        var first = await File.ReadAllLinesAsync(file);
        await RunAsync("WARNING", topic);
        var lines = await File.ReadAllLinesAsync(file);

        // The directory was created, the first run's lines are kept, and the second run's follow them.
        Assert.Equal(first, lines.Take(first.Length));
        var entries = lines.Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.All(entries, e => Assert.Equal("w-7", e.GetProperty("worker_id").GetString()));
        string[] Levels(IEnumerable<JsonElement> run) => [.. run.Select(e => e.GetProperty("level").GetString()!).Distinct().Order()];
        Assert.Contains("info", Levels(entries.Take(first.Length)));
        Assert.Contains("error", Levels(entries.Take(first.Length)));
        // At WARNING, the second run wrote its error and nothing below warning.
        var second = entries.Skip(first.Length).ToArray();
        Assert.Contains(second, e => e.GetProperty("message").GetString()!.StartsWith("Hook arrange failed", StringComparison.Ordinal));
        Assert.DoesNotContain("info", Levels(second));
        Assert.DoesNotContain("debug", Levels(second));
    }

    private sealed class NoTasks : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    [Fact]
    public async Task The_embedded_broker_gives_the_source_topic_4_partitions_and_the_worker_consumes_all_of_them()
    {
        var config = TestWorker.Config(WorkerHost.EmbeddedBrokers, "embedded-requests", "embedded-group");

        await using var worker = await TestWorker.StartAsync(new NoTasks(), config);

        Assert.NotNull(worker.EmbeddedBroker);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = worker.EmbeddedBroker.BootstrapServers }).Build())
        {
            var topic = Assert.Single(admin.GetMetadata("embedded-requests", TimeSpan.FromSeconds(10)).Topics);
            Assert.Equal(4, topic.Partitions.Count);
        }
        await Eventually.True(() => worker.AssignedPartitions.Count == 4, TimeSpan.FromSeconds(30), "all four partitions assigned");
        await worker.StopAsync();
    }
}
