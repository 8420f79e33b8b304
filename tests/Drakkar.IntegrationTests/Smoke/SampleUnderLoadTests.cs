using System.Text.Json;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Smoke;

/// <summary>
/// Signals while the sample binary is busy (SPEC O8): the first drains the work in flight, commits it and exits 0;
/// a second one exits 130 at once without draining.
/// </summary>
[Collection(KafkaCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SampleUnderLoadTests(KafkaBroker kafka) : IDisposable
{
    private const int Partitions = 2;
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-load-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string TasksLog => Path.Combine(_dir, "tasks.log");

    private string PidsLog => Path.Combine(_dir, "pids.log");

    /// <summary>Whether a process exists and has not exited (a zombie has exited).</summary>
    private static bool Alive(string pid) =>
        File.Exists($"/proc/{pid}/stat") && File.ReadAllText($"/proc/{pid}/stat").Split(") ")[^1][0] != 'Z';

    private string ResultsFile => Path.Combine(_dir, "search-results.jsonl");

    /// <summary>The request ids whose search started, and those whose search ended (the slow grep logs both).</summary>
    private (HashSet<string> Started, HashSet<string> Ended) Tasks()
    {
        var lines = File.Exists(TasksLog) ? File.ReadAllLines(TasksLog) : [];
        return ([.. lines.Where(l => l.StartsWith("start ", StringComparison.Ordinal)).Select(l => l[6..])],
                [.. lines.Where(l => l.StartsWith("end ", StringComparison.Ordinal)).Select(l => l[4..])]);
    }

    private HashSet<string> Written() => File.Exists(ResultsFile)
        ? [.. File.ReadAllLines(ResultsFile).Select(line => JsonDocument.Parse(line).RootElement.GetProperty("request_id").GetString()!)]
        : [];

    /// <summary>
    /// Produces <paramref name="total"/> requests whose pattern is their own id (<c>r-{partition}-{offset}</c>), and
    /// writes a config whose "grep" logs each search's start and end around a sleep of <paramref name="seconds"/>.
    /// </summary>
    private async Task<(string Config, string Group, string Topic)> PrepareAsync(int total, double seconds, int maxExecutors = 2)
    {
        var topic = kafka.CreateTopic("sample-load", Partitions);
        var group = $"{topic}-g";
        var corpus = Path.Combine(_dir, "corpus.txt");
        await File.WriteAllLinesAsync(corpus, Enumerable.Range(0, total).Select(i => $"line {i} drakkar r-{i % Partitions}-{i / Partitions}"));
        var slowGrep = Path.Combine(_dir, "slow-grep");
        // Arguments are "-n -- PATTERN PATH"; the pattern names the request.
        await File.WriteAllTextAsync(slowGrep, $"#!/bin/sh\necho $$ >> {PidsLog}\necho \"start $3\" >> {TasksLog}\nsleep {seconds}\necho \"end $3\" >> {TasksLog}\nexec grep \"$@\"\n");
        File.SetUnixFileMode(slowGrep, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, Partitions, total,
            i => $$"""{"request_id":"r-{{i % Partitions}}-{{i / Partitions}}","pattern":"r-{{i % Partitions}}-{{i / Partitions}}","path":"{{corpus}}"}""");
        var config = Path.Combine(_dir, "load.yaml");
        await File.WriteAllTextAsync(config, $$"""
            kafka: { brokers: "{{kafka.BootstrapServers}}", source_topic: {{topic}}, consumer_group: {{group}}, commit_interval_ms: 100 }
            executor: { binary_path: "{{slowGrep}}", max_executors: {{maxExecutors}}, window_size: 4, drain_timeout_seconds: 30,
                        backpressure_high_multiplier: 6, backpressure_low_multiplier: 2 }
            sinks: { filesystem: { results: { base_path: "{{_dir}}" } } }
            metrics: { enabled: false }
            """);
        return (config, group, topic);
    }

    [Fact]
    public async Task SIGTERM_during_load_drains_in_flight_work_commits_only_written_results_and_exits_0()
    {
        const int total = 120;
        // Backpressure keeps at most about 12 searches arranged, so the drain (which runs them all) takes a few seconds.
        var (config, group, topic) = await PrepareAsync(total, seconds: 0.3);

        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["--config", config], _dir);
        // Signal once results are flowing and a search is running (started, not ended).
        HashSet<string> inFlight = [];
        await Eventually.True(() =>
        {
            var (started, ended) = Tasks();
            inFlight = [.. started.Except(ended)];
            return Written().Count >= 10 && inFlight.Count > 0;
        }, TimeSpan.FromSeconds(60), () => $"ten results written and a search running (stderr: {sample.Stderr})");
        var startedAtSignal = Tasks().Started;
        sample.Signal(Posix.SigTerm);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(40)), $"no exit after SIGTERM; stderr:\n{sample.Stderr}");
        Assert.Equal(0, sample.ExitCode);

        var written = Written();
        Assert.True(written.Count < total, "the signal came while work was still queued");
        var committed = TestWorker.Committed(kafka.BootstrapServers, topic, group, Partitions);
        // Nothing committed that was not written.
        for (var p = 0; p < Partitions; p++)
            for (long o = 0; o < committed[p]; o++)
                Assert.Contains($"r-{p}-{o}", written);
        // Every search running at the signal finished, and its result was written and committed.
        foreach (var id in startedAtSignal)
        {
            Assert.Contains(id, written);
            var (p, o) = (int.Parse(id.Split('-')[1]), long.Parse(id.Split('-')[2]));
            Assert.True(o < committed[p], $"{id} was in flight at the signal but its offset is not committed ({string.Join(",", committed)})");
        }
        Assert.Contains(inFlight.First(), startedAtSignal);
    }

    [Fact]
    public async Task A_second_signal_exits_130_at_once_without_draining()
    {
        // Every search takes 30 s, and so would the drain.
        var (config, group, topic) = await PrepareAsync(total: 4, seconds: 30);

        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["--config", config], _dir);
        await Eventually.True(() => Tasks().Started.Count > 0, TimeSpan.FromSeconds(60), () => $"a search running (stderr: {sample.Stderr})");
        await SignalTwiceAsync(sample);

        Assert.Contains("second signal: exiting without draining", sample.Stderr);
        Assert.DoesNotContain("\"Stopped\"", sample.Stderr);
        Assert.Empty(Tasks().Ended);
        Assert.Equal([-1L, -1L], TestWorker.Committed(kafka.BootstrapServers, topic, group, Partitions));
        // The searches that were running did not outlive the worker.
        var searches = File.ReadAllLines(PidsLog);
        Assert.NotEmpty(searches);
        await Eventually.True(() => !searches.Any(Alive), TimeSpan.FromSeconds(5), "every search process gone");
    }

    [Fact]
    public async Task A_second_signal_while_searches_are_starting_leaves_none_running_after_the_exit()
    {
        // Short searches on many executors: one starts about every few milliseconds, so some start while the worker is
        // killing the running ones and exiting.
        var (config, _, _) = await PrepareAsync(total: 4000, seconds: 0.05, maxExecutors: 16);

        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["--config", config], _dir);
        await Eventually.True(() => Tasks().Ended.Count >= 50, TimeSpan.FromSeconds(60), () => $"searches running (stderr: {sample.Stderr})");
        await SignalTwiceAsync(sample);

        // A search that outlived the worker ends its 50 ms sleep and logs its end after the exit.
        var endedAtExit = Tasks().Ended;
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Empty(Tasks().Ended.Except(endedAtExit));
        Assert.DoesNotContain(File.ReadAllLines(PidsLog), Alive);
    }

    [Fact]
    public async Task A_failed_searchs_stderr_reaches_the_log_with_its_credentials_masked()
    {
        var (config, group, topic) = await PrepareAsync(total: 1, seconds: 0);
        // The "grep" fails quoting the DSN it could not reach, as a real tool would.
        await File.WriteAllTextAsync(Path.Combine(_dir, "slow-grep"),
            "#!/bin/sh\necho 'connecting to postgres://admin:s3cretpw@db:5432/x failed' >&2\nexit 3\n");

        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["--config", config], _dir);
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, Partitions)[0] == 1, TimeSpan.FromSeconds(60),
            () => $"the failed search committed (stderr: {sample.Stderr})");
        sample.Signal(Posix.SigTerm);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(30)), $"no exit after SIGTERM; stderr:\n{sample.Stderr}");

        var failed = Assert.Single(sample.Stderr.Split('\n'), line => line.Contains("failed for good", StringComparison.Ordinal));
        Assert.Contains("postgres://admin:***@db:5432/x", failed, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cretpw", sample.Stderr, StringComparison.Ordinal);
    }

    /// <summary>SIGTERM, and once the drain has begun a second SIGTERM: the sample exits 130 within 10 s.</summary>
    private static async Task SignalTwiceAsync(SampleBinary sample)
    {
        sample.Signal(Posix.SigTerm);
        await Eventually.True(() => sample.Stderr.Contains("Stopping: draining partitions", StringComparison.Ordinal), TimeSpan.FromSeconds(10),
            "the drain beginning");
        sample.Signal(Posix.SigTerm);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(10)), $"still running 10 s after the second signal; stderr:\n{sample.Stderr}");
        Assert.Equal(130, sample.ExitCode);
    }
}
