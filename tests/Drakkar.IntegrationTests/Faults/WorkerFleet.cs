using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// Copies of the sample worker (the Native AOT binary when DRAKKAR_SAMPLE_AOT is set, the JIT build otherwise) in one
/// consumer group, started, stopped (SIGTERM) and killed (SIGKILL) by slot, with every log line time-stamped so the
/// partition ownership timeline can be read back afterwards.
/// </summary>
internal sealed partial class WorkerFleet : IDisposable
{
    private readonly string _binary;
    private readonly string _config;
    private readonly string _dir;
    private readonly List<(string WorkerId, SampleBinary Process)> _all = [];
    private readonly Dictionary<int, (string WorkerId, SampleBinary Process)> _running = [];
    private readonly List<TimeSpan> _stops = [];
    private int _started;

    public WorkerFleet(string dir, string config)
    {
        _dir = dir;
        _config = config;
        _binary = SampleBinary.PathOf(aot: true) ?? SampleBinary.PathOf(aot: false)!;
    }

    public bool NativeAot => _binary == SampleBinary.PathOf(aot: true);

    /// <summary>How long each SIGTERM took until the process exited.</summary>
    public IReadOnlyList<TimeSpan> StopDurations => _stops;

    public IEnumerable<int> RunningSlots => _running.Keys;

    /// <summary>Starts a new worker process in <paramref name="slot"/> and waits until it has joined the group.</summary>
    public async Task StartAsync(int slot)
    {
        var workerId = $"w{slot}-{++_started}";
        var process = SampleBinary.Start(_binary, ["--config", _config], _dir, new Dictionary<string, string> { ["WORKER_ID"] = workerId });
        _all.Add((workerId, process));
        _running[slot] = (workerId, process);
        await Eventually.True(() => process.Stderr.Contains("is ready", StringComparison.Ordinal) || process.HasExited,
            TimeSpan.FromSeconds(30), $"worker {workerId} ready");
        if (process.HasExited) throw new InvalidOperationException($"worker {workerId} exited at start:\n{process.Stderr}");
    }

    /// <summary>SIGTERM and wait for the exit; the exit code must be 0.</summary>
    public void Stop(int slot, TimeSpan bound)
    {
        var (workerId, process) = _running[slot];
        _running.Remove(slot);
        var clock = Stopwatch.StartNew();
        process.Signal(Posix.SigTerm);
        if (!process.WaitForExit(bound + TimeSpan.FromSeconds(30)))
            throw new TimeoutException($"worker {workerId} did not exit after SIGTERM:\n{process.Stderr}");
        _stops.Add(clock.Elapsed);
        if (process.ExitCode != 0) throw new InvalidOperationException($"worker {workerId} exited {process.ExitCode}:\n{process.Stderr}");
    }

    /// <summary>SIGKILL: no drain, no commit, no leave.</summary>
    public void Kill(int slot)
    {
        var (_, process) = _running[slot];
        _running.Remove(slot);
        process.Signal(Posix.SigKill);
        process.WaitForExit(TimeSpan.FromSeconds(10));
    }

    public void StopAll(TimeSpan bound)
    {
        foreach (var slot in _running.Keys.ToArray()) Stop(slot, bound);
    }

    /// <summary>Every worker's log, for a failure message.</summary>
    public string Logs() => string.Join("\n", _all.Select(w => $"----- {w.WorkerId}\n{w.Process.Stderr}"));

    /// <summary>
    /// The longest time any partition had no owner between <paramref name="from"/> and <paramref name="until"/>: a
    /// partition is owned from "Partitions assigned" until "Partitions revoked"/"lost" or its worker's exit.
    /// </summary>
    public TimeSpan LongestUnowned(int partitions, DateTime from, DateTime until)
    {
        var events = new List<(DateTime At, int Partition, string Worker, bool Owned)>();
        foreach (var (workerId, process) in _all)
        {
            var lines = process.StderrLines;
            foreach (var (at, line) in lines)
            {
                var match = OwnershipLine().Match(line);
                if (!match.Success) continue;
                var owned = match.Groups[1].Value == "assigned";
                foreach (var p in match.Groups[2].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                    events.Add((at, int.Parse(p, System.Globalization.CultureInfo.InvariantCulture), workerId, owned));
            }
            if (process.HasExited && lines.Count > 0)
                for (var p = 0; p < partitions; p++) events.Add((lines[^1].At, p, workerId, false));
        }
        var longest = TimeSpan.Zero;
        for (var p = 0; p < partitions; p++)
        {
            var owners = new HashSet<string>();
            DateTime? unownedSince = from;
            foreach (var e in events.Where(e => e.Partition == p).OrderBy(e => e.At))
            {
                if (e.Owned) owners.Add(e.Worker); else owners.Remove(e.Worker);
                if (owners.Count == 0) unownedSince ??= e.At < from ? from : e.At;
                else if (unownedSince is { } since)
                {
                    var gap = (e.At < until ? e.At : until) - since;
                    if (gap > longest) longest = gap;
                    unownedSince = null;
                }
            }
            if (unownedSince is { } open && until - open > longest) longest = until - open;
        }
        return longest;
    }

    /// <summary>
    /// The request ids in the sample's JSONL results, with how often each was written. Read while workers append, so
    /// a last line without its newline is a write still under way, not a result yet.
    /// </summary>
    public static Dictionary<string, int> Results(string resultsFile)
    {
        var counts = new Dictionary<string, int>();
        if (!File.Exists(resultsFile)) return counts;
        var text = File.ReadAllText(resultsFile);
        foreach (var line in text[..(text.LastIndexOf('\n') + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var id = JsonDocument.Parse(line).RootElement.GetProperty("request_id").GetString()!;
            counts[id] = counts.GetValueOrDefault(id) + 1;
        }
        return counts;
    }

    public void Dispose()
    {
        foreach (var (_, process) in _all) process.Dispose();
    }

    [GeneratedRegex(@"Partitions (assigned|revoked, draining|lost, work abandoned uncommitted): ([0-9, ]+)")]
    private static partial Regex OwnershipLine();
}
