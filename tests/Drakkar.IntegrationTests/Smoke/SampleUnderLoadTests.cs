using System.Text.Json;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Smoke;

/// <summary>SIGTERM while the sample binary is busy: it drains, commits only what it wrote, and exits 0.</summary>
[Collection(KafkaCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SampleUnderLoadTests(KafkaBroker kafka) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-load-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task SIGTERM_during_load_drains_in_flight_work_commits_only_written_results_and_exits_0()
    {
        const int partitions = 2, total = 120;
        var topic = kafka.CreateTopic("sample-load", partitions);
        var group = $"{topic}-g";
        var corpus = Path.Combine(_dir, "corpus.txt");
        await File.WriteAllLinesAsync(corpus, Enumerable.Range(0, 50).Select(i => $"line {i} drakkar longship"));
        // A slow search: every task takes a moment, so work is in flight when the signal arrives.
        var slowGrep = Path.Combine(_dir, "slow-grep");
        await File.WriteAllTextAsync(slowGrep, "#!/bin/sh\nsleep 0.2\nexec grep \"$@\"\n");
        File.SetUnixFileMode(slowGrep, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, partitions, total,
            i => $$"""{"request_id":"r-{{i % partitions}}-{{i / partitions}}","pattern":"drakkar","path":"{{corpus}}"}""");

        var config = Path.Combine(_dir, "load.yaml");
        await File.WriteAllTextAsync(config, $$"""
            kafka: { brokers: "{{kafka.BootstrapServers}}", source_topic: {{topic}}, consumer_group: {{group}}, commit_interval_ms: 100 }
            executor: { binary_path: "{{slowGrep}}", max_executors: 2, window_size: 4, drain_timeout_seconds: 30 }
            sinks: { filesystem: { results: { base_path: "{{_dir}}" } } }
            metrics: { enabled: false }
            """);
        var results = Path.Combine(_dir, "search-results.jsonl");
        int Written() => File.Exists(results) ? File.ReadAllLines(results).Length : 0;

        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["--config", config], _dir);
        await Eventually.True(() => Written() >= 10, TimeSpan.FromSeconds(60), $"ten results written (stderr: {sample.Stderr})");
        sample.Signal(Posix.SigTerm);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(40)), $"no exit after SIGTERM; stderr:\n{sample.Stderr}");
        Assert.Equal(0, sample.ExitCode);

        var written = File.ReadAllLines(results)
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("request_id").GetString()!)
            .ToHashSet();
        Assert.True(written.Count < total, "the signal came while work was still queued");
        var committed = TestWorker.Committed(kafka.BootstrapServers, topic, group, partitions);
        Assert.True(committed.Sum() > 0, "the drain committed its progress");
        for (var p = 0; p < partitions; p++)
            for (long o = 0; o < committed[p]; o++)
                Assert.Contains($"r-{p}-{o}", written);
    }
}
