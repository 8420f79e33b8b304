using System.Diagnostics;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// Scaling a consumer group of sample workers while a stream flows in, with healthy sinks: graceful handovers must
/// neither lose nor repeat a message, leave no partition without an owner much longer than the group's join delay,
/// and stop each worker within its drain timeout. kill -9 handovers must lose nothing (duplicates are allowed there:
/// at-least-once).
/// </summary>
[Trait(NativeAotTrait.Name, NativeAotTrait.Sample)]
[Collection(KafkaCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ScalingTests(KafkaBroker kafka, ITestOutputHelper output) : IDisposable
{
    private const int Partitions = 4;
    // The embedded broker (librdkafka's mock cluster) holds every classic join round for session.timeout.ms - 1 s,
    // where a real broker completes it once all members rejoined; a short session keeps the rounds short. A KIP-848
    // handover takes up to two heartbeats (1 s each on the embedded broker): the revoke, then the assignment.
    private const int SessionTimeoutMs = 3_000;
    private static readonly TimeSpan JoinDelay = TimeSpan.FromMilliseconds(SessionTimeoutMs - 1_000);
    private const int DrainTimeoutSeconds = 10;

    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-scaling-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Graceful handovers run on the KIP-848 protocol (group_protocol: consumer): there a revoked partition's final
    // commit is accepted. On the classic protocol the embedded broker refuses any commit while a join round is open
    // (EmbeddedBrokerGroupTests shows it with a plain client; Kafka accepts one from the current generation), so the
    // classic rows report their duplicates instead of asserting none.
    [Fact]
    public Task Rolling_restart_of_three_workers_loses_and_repeats_nothing() =>
        RunAsync("rolling restart (SIGTERM each of 3)", "consumer", 3, expectDuplicates: false, RollingRestartAsync);

    [Fact]
    public Task Scaling_out_from_one_to_three_workers_loses_and_repeats_nothing() =>
        RunAsync("scale out 1 → 3", "consumer", 1, expectDuplicates: false, async fleet =>
        {
            await fleet.StartAsync(1);
            await SettleAsync(fleet);
            await fleet.StartAsync(2);
            await SettleAsync(fleet);
        });

    [Fact]
    public Task Scaling_in_from_three_workers_to_one_loses_and_repeats_nothing() =>
        RunAsync("scale in 3 → 1", "consumer", 3, expectDuplicates: false, async fleet =>
        {
            fleet.Stop(2, TimeSpan.FromSeconds(DrainTimeoutSeconds));
            await SettleAsync(fleet);
            fleet.Stop(1, TimeSpan.FromSeconds(DrainTimeoutSeconds));
            await SettleAsync(fleet);
        });

    [Fact]
    public Task Rolling_restart_on_the_classic_protocol_loses_nothing() =>
        RunAsync("rolling restart, classic protocol", "classic", 3, expectDuplicates: true, RollingRestartAsync);

    private static async Task RollingRestartAsync(WorkerFleet fleet)
    {
        foreach (var slot in new[] { 0, 1, 2 })
        {
            fleet.Stop(slot, TimeSpan.FromSeconds(DrainTimeoutSeconds));
            await fleet.StartAsync(slot);
            await SettleAsync(fleet);
        }
    }

    [Fact]
    public Task Killing_each_of_three_workers_in_turn_loses_nothing() =>
        RunAsync("kill -9 each of 3 in turn, classic protocol", "classic", 3, expectDuplicates: true, async fleet =>
        {
            foreach (var slot in new[] { 0, 1, 2 })
            {
                fleet.Kill(slot);
                await fleet.StartAsync(slot);
                await SettleAsync(fleet);
            }
        });

    /// <summary>Gives the group time to finish the rebalance rounds a change started, with the stream flowing.</summary>
    private static Task SettleAsync(WorkerFleet fleet) => Task.Delay(JoinDelay * 2 + TimeSpan.FromSeconds(2));

    private async Task RunAsync(string scenario, string protocol, int initialWorkers, bool expectDuplicates, Func<WorkerFleet, Task> change)
    {
        var topic = kafka.CreateTopic("scaling", Partitions);
        var corpus = Path.Combine(_dir, "corpus.txt");
        await File.WriteAllLinesAsync(corpus, Enumerable.Range(0, 50).Select(i => $"line {i} drakkar longship"));
        // Every task takes a moment, so work is in flight at each handover.
        var slowGrep = Path.Combine(_dir, "slow-grep");
        await File.WriteAllTextAsync(slowGrep, "#!/bin/sh\nsleep 0.05\nexec grep \"$@\"\n");
        File.SetUnixFileMode(slowGrep, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var config = Path.Combine(_dir, "worker.yaml");
        await File.WriteAllTextAsync(config, $$"""
            kafka: { brokers: "{{kafka.BootstrapServers}}", source_topic: {{topic}}, consumer_group: {{topic}}-g, commit_interval_ms: 200, session_timeout_ms: {{SessionTimeoutMs}}, heartbeat_interval_ms: 500, group_protocol: {{protocol}} }
            executor: { binary_path: "{{slowGrep}}", max_executors: 4, window_size: 4, drain_timeout_seconds: {{DrainTimeoutSeconds}} }
            sinks: { filesystem: { results: { base_path: "{{_dir}}" } } }
            metrics: { enabled: false }
            """);
        var results = Path.Combine(_dir, "search-results.jsonl");

        using var fleet = new WorkerFleet(_dir, config);
        for (var slot = 0; slot < initialWorkers; slot++) await fleet.StartAsync(slot);
        await SettleAsync(fleet);

        // A steady stream (about 60 messages a second) for the whole change.
        await using var stream = new RequestStream(kafka.BootstrapServers, topic, Partitions, corpus, TimeSpan.FromMilliseconds(16));
        var from = DateTime.UtcNow;
        var clock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(2));
        await change(fleet);
        await Task.Delay(TimeSpan.FromSeconds(2));
        var produced = await stream.StopAsync();
        var until = DateTime.UtcNow;

        await Eventually.True(() => WorkerFleet.Results(results).Count >= produced, TimeSpan.FromSeconds(60),
            () => $"all {produced} requests answered\n{fleet.Logs()}");
        await Task.Delay(1_000);
        fleet.StopAll(TimeSpan.FromSeconds(DrainTimeoutSeconds));

        var counts = WorkerFleet.Results(results);
        var lost = Enumerable.Range(0, produced).Count(i => !counts.ContainsKey($"r-{i}"));
        var duplicates = counts.Values.Sum(c => c - 1);
        var unowned = fleet.LongestUnowned(Partitions, from, until);
        var longestStop = fleet.StopDurations.DefaultIfEmpty().Max();
        output.WriteLine($"{scenario}: {produced} in, {counts.Count} delivered, duplicates {duplicates}, lost {lost}, " +
            $"longest unowned {unowned.TotalSeconds:0.0}s (join delay {JoinDelay.TotalSeconds:0.0}s), longest stop {longestStop.TotalSeconds:0.0}s, " +
            $"{(fleet.NativeAot ? "AOT" : "JIT")} workers, {clock.Elapsed.TotalSeconds:0}s");
        FaultReport.Add(scenario, $"{produced} messages, {Partitions} partitions, group_protocol {protocol}, {(fleet.NativeAot ? "Native AOT" : "JIT")} workers",
            delivered: $"{counts.Count}", dlq: 0, duplicates, lost,
            recovery: $"longest without owner {unowned.TotalSeconds:0.0} s; longest stop {longestStop.TotalSeconds:0.0} s");

        Assert.True(lost == 0, $"{lost} lost\n{fleet.Logs()}");
        var repeated = string.Join(", ", counts.Where(c => c.Value > 1)
            .Select(c => int.Parse(c.Key[2..], System.Globalization.CultureInfo.InvariantCulture))
            .Order().Select(i => $"{i % Partitions}@{i / Partitions}"));
        if (!expectDuplicates) Assert.True(duplicates == 0, $"{duplicates} duplicates (partition@offset: {repeated})\n{fleet.Logs()}");
        if (!expectDuplicates) Assert.True(unowned <= JoinDelay + TimeSpan.FromSeconds(5), $"a partition had no owner for {unowned}\n{fleet.Logs()}");
        Assert.All(fleet.StopDurations, d => Assert.True(d <= TimeSpan.FromSeconds(DrainTimeoutSeconds), $"a stop took {d}"));
    }
}
