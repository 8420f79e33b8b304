using Drakkar.Diagnostics.Recorder;
using Drakkar.Execution;
using Drakkar.Observability.Metrics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Runtime.Tests.Diagnostics;

/// <summary>The flight recorder's buffer, filters and database, without a worker around it.</summary>
public sealed class FlightRecorderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-recorder-").FullName;
    private readonly DrakkarMetrics _metrics = new();

    public void Dispose()
    {
        _metrics.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task When_the_buffer_is_full_events_are_dropped_and_counted_and_the_rest_are_stored()
    {
        var config = new DebugConfig { Enabled = true, DbDir = _dir, MaxBuffer = 1000, RetentionMaxEvents = 100_000 };
        var recorder = NewRecorder(config);
        // The writer is not started yet: nothing drains the buffer, as when the disk stalls.
        for (var i = 0; i < 1500; i++) Finish(recorder, $"t{i}", TimeSpan.FromMilliseconds(1), offset: i);

        Assert.Equal(500, _metrics.RecorderEventsDropped.Value("buffer_full"));
        Assert.Equal(500, recorder.Dropped);
        Assert.Contains("drakkar_recorder_events_dropped_total{reason=\"buffer_full\"} 500", _metrics.Registry.Export());

        recorder.Start();
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();
        Assert.Equal([(1000L, 0L, 999L)], Query(database, "SELECT count(*), min(offset), max(offset) FROM events WHERE kind = 'task_finished'"));
    }

    [Fact]
    public async Task Output_and_task_rows_follow_store_output_and_the_min_duration_keys()
    {
        var config = new DebugConfig
        {
            Enabled = true, DbDir = _dir, FlushIntervalSeconds = 1, OutputMinDurationMs = 100, EventMinDurationMs = 10, LogMinDurationMs = 50,
        };
        var recorder = NewRecorder(config);
        recorder.Start();
        Finish(recorder, "fast", TimeSpan.FromMilliseconds(5));     // under event_min_duration_ms: memory only
        Finish(recorder, "medium", TimeSpan.FromMilliseconds(20));  // stored, without output
        Finish(recorder, "slow", TimeSpan.FromMilliseconds(200));   // stored with its output
        var database = recorder.DatabasePath!;
        var slow = recorder.SlowTasks(10);
        var recent = recorder.RecentTasks(10);
        await recorder.DisposeAsync();

        Assert.Equal(["slow", "medium", "fast"], recent.Select(t => t.TaskId));
        Assert.Equal(["slow"], slow.Select(t => t.TaskId));
        var rows = QueryText(database, "SELECT kind || ' ' || task_id || ' ' || coalesce(stdout, '-') FROM events ORDER BY seq");
        Assert.Equal(["task_finished medium -", "task_finished slow out of slow\n"], rows);
    }

    [Fact]
    public async Task Consumed_messages_are_stored_as_ranges_of_consecutive_offsets()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir });
        recorder.Start();
        foreach (var offset in new long[] { 0, 1, 2, 3, 10, 11 }) recorder.MessageConsumed(Message(offset));
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();
        Assert.Equal([(0L, 4L, 0L), (10L, 2L, 0L)], Query(database, "SELECT offset, count, partition FROM events WHERE kind = 'consumed' ORDER BY seq"));
    }

    [Fact]
    public void Retention_keeps_exactly_the_newest_events_and_none_older_than_the_limit_across_packs()
    {
        var now = DateTimeOffset.UtcNow;
        using var store = new EventStore(_dir, "w1");
        store.Open(now);
        var seq = 0L;
        // Two and a half packs, then a limit that cuts the middle of the first pack left.
        store.Append(Tasks(2 * EventStore.PackSize + EventStore.PackSize / 2, now), now.AddHours(-1), maxEvents: int.MaxValue);
        store.Append(Tasks(10, now), now.AddHours(-1), maxEvents: EventStore.PackSize + 100);
        Assert.Equal([(EventStore.PackSize + 100L, seq - EventStore.PackSize - 99, seq)], Query(store.Path!, "SELECT count(*), min(seq), max(seq) FROM events"));

        // Events older than the time limit are gone too, also where one pack holds old and recent ones.
        var old = Tasks(5, now);
        var recent = Tasks(3, now.AddHours(2));
        store.Append([.. old, .. recent], now.AddHours(1), maxEvents: int.MaxValue);
        Assert.Equal([(3L, seq - 2, seq)], Query(store.Path!, "SELECT count(*), min(seq), max(seq) FROM events"));
        Assert.Equal(["task_finished t1 0.5"], QueryText(store.Path!, "SELECT kind || ' ' || task_id || ' ' || duration_ms FROM events WHERE seq = " + (seq - 1)));

        List<FlightEvent> Tasks(int count, DateTimeOffset at) =>
            [.. Enumerable.Range(0, count).Select(i => new FlightEvent(++seq, at, FlightEvent.TaskFinished) { TaskId = $"t{i}", DurationMs = 0.5, ExitCode = 0 })];
    }

    private FlightRecorder NewRecorder(DebugConfig config) =>
        new(config, ("w1", "c1", "", "{}", "debug: {}"), () => "{}", _metrics, NullLogger.Instance);

    private static void Finish(FlightRecorder recorder, string id, TimeSpan duration, long offset = 1)
    {
        var task = new ExecutorTask(id) { SourceOffsets = [offset] };
        recorder.TaskFinished(task, 1, ExecutorOutcome.Success(new ExecutorResult(task, 0, $"out of {id}\n", "", duration, 42)));
    }

    private static SourceMessage Message(long offset) => new() { Topic = "t", Partition = 0, Offset = offset };

    private static List<(long, long, long)> Query(string database, string sql)
    {
        using var db = new SqliteConnection($"Data Source={database};Mode=ReadOnly");
        db.Open();
        using var command = db.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<(long, long, long)>();
        while (reader.Read()) rows.Add((reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2)));
        return rows;
    }

    private static List<string> QueryText(string database, string sql)
    {
        using var db = new SqliteConnection($"Data Source={database};Mode=ReadOnly");
        db.Open();
        using var command = db.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read()) rows.Add(reader.GetString(0));
        return rows;
    }
}
