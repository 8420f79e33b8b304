using System.Diagnostics;
using System.Globalization;
using Drakkar.Diagnostics;
using Drakkar.Diagnostics.Recorder;
using Drakkar.Execution;
using Drakkar.Observability.Metrics;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Bench.Diagnostics;

/// <summary>
/// CPU the flight recorder spends per finished task: <c>events</c> task attempts (and a commit per 100) through a
/// <see cref="FlightRecorder"/> writing to a temporary directory, against the same recorder keeping them in memory
/// only (<c>db_dir: ""</c>) and the same loop without a recorder, alternating. Process CPU time, not wall time: the machine is shared. Events arrive in
/// chunks of 5,000 every 100 ms (about the orchestration bench's pace), so the writer's batches are as large as
/// in the worker and the default retention (100,000 events) deletes once the file is full.
/// </summary>
internal static class RecorderCost
{
    private const int Chunk = 5_000;
    private const int StoreBatch = 2 * FlightRecorder.LaneWakeEvents;

    public static async Task<int> RunAsync(string[] options)
    {
        var events = options.Length > 0 ? int.Parse(options[0], CultureInfo.InvariantCulture) : 300_000;
        var rounds = options.Length > 1 ? int.Parse(options[1], CultureInfo.InvariantCulture) : 3;
        foreach (var side in Enum.GetValues<Side>()) await MeasureAsync(events, side);
        var results = Enum.GetValues<Side>().ToDictionary(side => side, _ => new List<double>());
        for (var round = 0; round < rounds; round++)
        {
            foreach (var side in Enum.GetValues<Side>()) results[side].Add(await MeasureAsync(events, side));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"round {round + 1}: stored {results[Side.Stored][^1]:F2} µs/event, memory only {results[Side.Memory][^1]:F2}, not recording {results[Side.None][^1]:F2}"));
        }
        var (s, m, n) = (Median(results[Side.Stored]), Median(results[Side.Memory]), Median(results[Side.None]));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{events} task events, median of {rounds}: stored {s:F2} µs/event, memory only {m:F2}, not recording {n:F2}: " +
            $"the recorder costs {m - n:F2} µs/event on the recording thread and {s - m:F2} more to store, {s - n:F2} in all"));
        return 0;
    }

    /// <summary>Stored to a temporary directory; kept in memory only (<c>db_dir: ""</c>); not recorded (the same loop without a recorder).</summary>
    private enum Side
    {
        Stored,
        Memory,
        None,
    }

    private static async Task<double> MeasureAsync(int events, Side side)
    {
        var dir = Directory.CreateTempSubdirectory("drakkar-recorder-cost-");
        try
        {
            using var metrics = new DrakkarMetrics();
            var config = new DebugConfig { Enabled = true, DbDir = side == Side.Stored ? dir.FullName : "", FlushIntervalSeconds = 5 };
            var recorder = new FlightRecorder(config, ("bench", "bench", "", "{}", "debug: {}"), () => "{}", metrics, NullLogger.Instance);
            IWorkerEvents observer = side == Side.None ? IWorkerEvents.None : recorder;
            recorder.Start();
            var tasks = Enumerable.Range(0, Chunk).Select(i => new ExecutorTask($"task-{i}") { SourceOffsets = [i] }).ToArray();
            GC.Collect();
            var before = Process.GetCurrentProcess().TotalProcessorTime;
            for (var sent = 0; sent < events; sent += Chunk)
            {
                for (var i = 0; i < Chunk; i++)
                {
                    var task = tasks[i];
                    observer.TaskFinished(task, 0, 1, ExecutorOutcome.Success(new ExecutorResult(task, 0, "", "", TimeSpan.FromMilliseconds(0.2), 1)));
                    if (i % 100 == 0) observer.Committed("bench", 0, sent + i);
                }
                await Task.Delay(100);
            }
            await recorder.DisposeAsync();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime - before;
            if (recorder.Dropped > 0) throw new InvalidOperationException($"{recorder.Dropped} events dropped");
            return cpu.TotalMicroseconds / events;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// <see cref="EventStore.Append"/> alone, on this thread: <c>events</c> task events in batches of <see cref="StoreBatch"/>
    /// (what two busy threads' lanes hold when one of them wakes the writer), the default retention (100,000 events,
    /// so the file is full after the first third), µs of process CPU per event, median of <c>rounds</c> after a
    /// discarded first round. What the writer thread spends, without draining the lanes.
    /// </summary>
    public static int RunStore(string[] options)
    {
        var events = options.Length > 0 ? int.Parse(options[0], CultureInfo.InvariantCulture) : 300_000;
        var rounds = options.Length > 1 ? int.Parse(options[1], CultureInfo.InvariantCulture) : 5;
        var results = new List<double>();
        // Ids as a worker makes them (prefix, creation ticks, random), made before the clock starts.
        var ids = new string[StoreBatch];
        for (var i = 0; i < ids.Length; i++) ids[i] = TaskId.New("echo");
        for (var round = 0; round <= rounds; round++)
        {
            var dir = Directory.CreateTempSubdirectory("drakkar-recorder-store-");
            try
            {
                using var store = new EventStore(dir.FullName, "bench");
                var now = DateTimeOffset.UtcNow;
                store.Open(now);
                var batch = new List<FlightEvent>(StoreBatch);
                var seq = 0L;
                var before = Process.GetCurrentProcess().TotalProcessorTime;
                for (var sent = 0; sent < events; sent += StoreBatch)
                {
                    batch.Clear();
                    for (var i = 0; i < StoreBatch; i++)
                    {
                        seq++;
                        batch.Add(new FlightEvent(seq, now, FlightEvent.TaskFinished)
                            { TaskId = ids[(int)(seq % ids.Length)], Partition = (int)(seq % 4), Offset = seq / 4, Attempt = 1, ExitCode = 0, DurationMs = 0.2 });
                    }
                    store.Append(batch, now.AddHours(-24), new DebugConfig().RetentionMaxEvents);
                }
                var cpu = (Process.GetCurrentProcess().TotalProcessorTime - before).TotalMicroseconds / seq;
                if (round == 0) continue;
                results.Add(cpu);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round}: {cpu:F2} µs of CPU per stored event, {StoredBytesPerEvent(store.Path!):F1} bytes per event in the packs kept"));
            }
            finally
            {
                dir.Delete(recursive: true);
            }
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{events} task events per round, median of {rounds}: {Median(results):F2} µs of CPU per stored event"));
        return 0;
    }

    // The packs' JSON over the events they hold (the file's size is mostly its write-ahead log and pages).
    private static double StoredBytesPerEvent(string database)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT sum(length(events_json)) * 1.0 / sum(count) FROM event_packs";
        return Convert.ToDouble(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
