using System.Diagnostics;
using System.Globalization;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// Restart-to-first-commit after kill -9: a lone sample worker is killed mid-stream and started again at once; how
/// long until its group commits again, on each group protocol, with and without static membership
/// (<c>kafka.group_instance_id</c>). The four variants run side by side, each on its own topic and group. What the
/// embedded broker does with the dead member decides the numbers (docs/operations.md, "Restarting after a crash").
/// </summary>
[Trait(NativeAotTrait.Name, NativeAotTrait.Sample)]
[Collection(KafkaCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class RestartTests(KafkaBroker kafka, ITestOutputHelper output) : IDisposable
{
    private const int Partitions = 2;
    private const int SessionTimeoutMs = 10_000;
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-restart-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task After_kill_9_a_restarted_worker_commits_again_and_nothing_is_lost()
    {
        var variants = new[] { ("classic", false), ("classic", true), ("consumer", false), ("consumer", true) };
        var outcomes = await Task.WhenAll(variants.Select(v => RunAsync(v.Item1, v.Item2)));
        foreach (var o in outcomes)
        {
            output.WriteLine($"{o.Scenario}: first commit {o.FirstCommit.TotalSeconds:0.0}s, every partition {o.EveryPartition.TotalSeconds:0.0}s after the restart; " +
                $"{o.Produced} in, {o.Delivered} delivered, duplicates {o.Duplicates}, lost {o.Lost}");
            FaultReport.Add(o.Scenario, $"{o.Produced} messages, {Partitions} partitions, one {(o.NativeAot ? "Native AOT" : "JIT")} worker",
                $"{o.Delivered}", 0, o.Duplicates, o.Lost,
                string.Create(CultureInfo.InvariantCulture, $"first commit {o.FirstCommit.TotalSeconds:0.0} s, every partition committing {o.EveryPartition.TotalSeconds:0.0} s after the restart"));
        }
        Assert.All(outcomes, o => Assert.True(o.Lost == 0, $"{o.Scenario}: {o.Lost} lost"));
    }

    private sealed record Outcome(string Scenario, bool NativeAot, int Produced, int Delivered, int Duplicates, int Lost, TimeSpan FirstCommit, TimeSpan EveryPartition);

    private async Task<Outcome> RunAsync(string protocol, bool staticMember)
    {
        var topic = kafka.CreateTopic("restart", Partitions);
        var group = $"{topic}-g";
        var dir = Directory.CreateDirectory(Path.Combine(_dir, topic)).FullName;
        var corpus = Path.Combine(dir, "corpus.txt");
        await File.WriteAllLinesAsync(corpus, ["drakkar longship"]);
        var config = Path.Combine(dir, "worker.yaml");
        var instance = staticMember ? $", group_instance_id: {topic}-member" : "";
        await File.WriteAllTextAsync(config, $$"""
            kafka: { brokers: "{{kafka.BootstrapServers}}", source_topic: {{topic}}, consumer_group: {{group}}, commit_interval_ms: 200, session_timeout_ms: {{SessionTimeoutMs}}, heartbeat_interval_ms: 1000, group_protocol: {{protocol}}{{instance}} }
            executor: { binary_path: /usr/bin/grep, max_executors: 2, window_size: 10, drain_timeout_seconds: 10 }
            sinks: { filesystem: { results: { base_path: "{{dir}}" } } }
            metrics: { enabled: false }
            """);
        var scenario = $"kill -9, restart at once: group_protocol {protocol}, {(staticMember ? "group_instance_id set" : "no group_instance_id")}";

        using var fleet = new WorkerFleet(dir, config);
        await fleet.StartAsync(0);
        await using var stream = new RequestStream(kafka.BootstrapServers, topic, Partitions, corpus, TimeSpan.FromMilliseconds(50));
        long[] Committed() => TestWorker.Committed(kafka.BootstrapServers, topic, group, Partitions);
        await Eventually.True(() => Committed().All(o => o > 10), TimeSpan.FromSeconds(60), () => $"{scenario}: the first worker committing\n{fleet.Logs()}");

        fleet.Kill(0);
        var atKill = Committed();
        var restart = Stopwatch.StartNew();
        await fleet.StartAsync(0);
        // A partition counts once its committed offset moves past where the killed worker left it.
        int Moved() => Committed().Zip(atKill).Count(c => c.First > c.Second);
        await Eventually.True(() => Moved() > 0, TimeSpan.FromSeconds(120), () => $"{scenario}: a commit after the restart\n{fleet.Logs()}");
        var firstCommit = restart.Elapsed;
        await Eventually.True(() => Moved() == Partitions, TimeSpan.FromSeconds(120), () => $"{scenario}: every partition committing after the restart\n{fleet.Logs()}");
        var everyPartition = restart.Elapsed;

        var produced = await stream.StopAsync();
        var results = Path.Combine(dir, "search-results.jsonl");
        await Eventually.True(() => WorkerFleet.Results(results).Count >= produced, TimeSpan.FromSeconds(60), () => $"{scenario}: all {produced} answered\n{fleet.Logs()}");
        fleet.StopAll(TimeSpan.FromSeconds(10));
        var counts = WorkerFleet.Results(results);
        var lost = Enumerable.Range(0, produced).Count(i => !counts.ContainsKey($"r-{i}"));
        return new Outcome(scenario, fleet.NativeAot, produced, counts.Count, counts.Values.Sum(n => n - 1), lost, firstCommit, everyPartition);
    }
}
