using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Drakkar.Diagnostics.Recorder;

/// <summary>
/// The recorder's SQLite files: one file per rotation interval, named
/// <c>drakkar-recorder-{worker}-{yyyyMMddTHHmmssZ}.db</c> in <c>debug.db_dir</c>. Only the recorder's writer task
/// touches it.
/// </summary>
internal sealed class EventStore : IDisposable
{
    private const string Schema = """
        PRAGMA page_size = 65536;
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        PRAGMA wal_autocheckpoint = 256;
        CREATE TABLE IF NOT EXISTS event_packs (
            id INTEGER PRIMARY KEY,
            first_at_ms INTEGER NOT NULL,
            last_at_ms INTEGER NOT NULL,
            count INTEGER NOT NULL,
            skip INTEGER NOT NULL DEFAULT 0,
            events_json TEXT NOT NULL);
        CREATE VIEW IF NOT EXISTS events AS SELECT
            json_extract(e.value, '$[0]') AS seq,
            json_extract(e.value, '$[1]') AS at_ms,
            json_extract(e.value, '$[2]') AS kind,
            json_extract(e.value, '$[3]') AS topic,
            json_extract(e.value, '$[4]') AS partition,
            json_extract(e.value, '$[5]') AS offset,
            json_extract(e.value, '$[6]') AS task_id,
            json_extract(e.value, '$[7]') AS attempt,
            json_extract(e.value, '$[8]') AS sink,
            json_extract(e.value, '$[9]') AS exit_code,
            json_extract(e.value, '$[10]') / 1000.0 AS duration_ms,
            json_extract(e.value, '$[11]') AS count,
            json_extract(e.value, '$[12]') AS detail,
            json_extract(e.value, '$[13]') AS stdout,
            json_extract(e.value, '$[14]') AS stderr
            FROM event_packs p, json_each(p.events_json) e WHERE e.key >= p.skip;
        CREATE TABLE IF NOT EXISTS worker_config (
            at_ms INTEGER NOT NULL,
            worker_id TEXT NOT NULL,
            cluster_name TEXT NOT NULL,
            debug_url TEXT NOT NULL,
            env_json TEXT NOT NULL,
            config_yaml TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS worker_state (
            at_ms INTEGER NOT NULL,
            state_json TEXT NOT NULL);
        """;

    // 64 KiB pages: a pack spans a few pages instead of dozens, and the WAL writes and checkpoints a sixteenth as many;
    // wal_autocheckpoint counts pages: 256 keeps the WAL near 16 MiB (the default, 1,000 pages, would let it reach 64 MiB).

    /// <summary>Events per row of <c>event_packs</c>.</summary>
    internal const int PackSize = 1000;

    // Only SQLite's JSON functions read the text, so nothing needs HTML-safe escaping.
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    private readonly string _directory;
    private readonly string _prefix;
    private SqliteConnection? _connection;
    private sqlite3_stmt? _insert;
    private sqlite3_stmt? _deleteExpired;
    private sqlite3_stmt? _skipExpired;
    private sqlite3_stmt? _packCounts;
    private sqlite3_stmt? _cut;
    private sqlite3_stmt? _skip;
    private readonly ArrayBufferWriter<byte> _json = new(64 * 1024);

    public EventStore(string directory, string workerId)
    {
        _directory = directory;
        _prefix = $"drakkar-recorder-{Sanitize(workerId)}-";
    }

    /// <summary>The file being written; null before <see cref="Open"/>.</summary>
    public string? Path { get; private set; }

    /// <summary>Closes the current file (if any) and starts a new one stamped <paramref name="now"/>.</summary>
    public void Open(DateTimeOffset now)
    {
        Close();
        Directory.CreateDirectory(_directory);
        var path = System.IO.Path.Combine(_directory, _prefix + now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture) + ".db");
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        using (var command = connection.CreateCommand())
        {
            command.CommandText = Schema;
            command.ExecuteNonQuery();
        }
        _connection = connection;
        Path = path;
    }

    /// <summary>
    /// Writes <paramref name="events"/> and applies retention (events older than <paramref name="oldest"/>, all but the
    /// newest <paramref name="maxEvents"/>) in one transaction. Events are stored in packs of up to
    /// <see cref="PackSize"/>, one JSON array per pack row, which the <c>events</c> view expands: a row per event cost
    /// about 2 µs of CPU (SQLite's B-tree work and 17 native calls per row), a pack costs the JSON encoding, a few
    /// hundred nanoseconds per event.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Append(List<FlightEvent> events, DateTimeOffset oldest, int maxEvents)
    {
        // A batch is stored in seq order, so packs follow one another in seq order except for an event whose thread was
        // descheduled between taking its seq and buffering it (it is in the next batch): retention, which cuts packs
        // from the front, keeps the newest events to within such stragglers.
        if (!InSeqOrder(events)) events.Sort(static (a, b) => a.Seq.CompareTo(b.Seq));
        var db = Connection.Handle!;
        Check(db, raw.sqlite3_exec(db, "BEGIN"));
        try
        {
            var insert = _insert ??= Prepare(db, "INSERT INTO event_packs (first_at_ms, last_at_ms, count, events_json) VALUES (?1, ?2, ?3, ?4)");
            for (var start = 0; start < events.Count; start += PackSize)
            {
                var count = Math.Min(PackSize, events.Count - start);
                var (json, firstAt, lastAt) = Encode(CollectionsMarshal.AsSpan(events).Slice(start, count));
                raw.sqlite3_bind_int64(insert, 1, firstAt);
                raw.sqlite3_bind_int64(insert, 2, lastAt);
                raw.sqlite3_bind_int(insert, 3, count);
                raw.sqlite3_bind_text(insert, 4, json.Span);
                Step(db, insert);
            }
            Trim(db, oldest, maxEvents);
            Check(db, raw.sqlite3_exec(db, "COMMIT"));
        }
        catch
        {
            raw.sqlite3_exec(db, "ROLLBACK");
            throw;
        }
    }

    private static bool InSeqOrder(List<FlightEvent> events)
    {
        for (var i = 1; i < events.Count; i++)
            if (events[i].Seq < events[i - 1].Seq) return false;
        return true;
    }

    /// <summary>
    /// The pack's JSON: an array of events, each an array of the <c>events</c> view's columns in order (the duration in
    /// microseconds), without the trailing nulls (<c>json_extract</c> reads a missing element as null); and the pack's
    /// oldest and newest times.
    /// Optimized at once: the writer calls this a few times a minute, too rarely for tiered compilation to reach it,
    /// and unoptimized it cost the recorder more than SQLite did.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private (ReadOnlyMemory<byte> Json, long FirstAtMs, long LastAtMs) Encode(ReadOnlySpan<FlightEvent> pack)
    {
        _json.ResetWrittenCount();
        var (firstAt, lastAt) = (long.MaxValue, long.MinValue);
        using var w = new Utf8JsonWriter(_json, JsonOptions);
        w.WriteStartArray();
        foreach (ref readonly var e in pack)
        {
            var at = e.At.ToUnixTimeMilliseconds();
            (firstAt, lastAt) = (Math.Min(firstAt, at), Math.Max(lastAt, at));
            w.WriteStartArray();
            w.WriteNumberValue(e.Seq);
            w.WriteNumberValue(at);
            w.WriteStringValue(e.Kind);
            var columns = e.Stderr is not null ? 15 : e.Stdout is not null ? 14 : e.Detail is not null ? 13 : e.Count is not null ? 12
                : e.DurationMs is not null ? 11 : e.ExitCode is not null ? 10 : e.Sink is not null ? 9 : 8;
            Write(w, e.Topic);
            Write(w, e.Partition);
            Write(w, e.Offset);
            if (e.HasTaskId) w.WriteStringValue(e.TaskIdChars);
            else w.WriteNullValue();
            Write(w, e.Attempt);
            if (columns > 8) Write(w, e.Sink);
            if (columns > 9) Write(w, e.ExitCode);
            if (columns > 10)
            {
                // Whole microseconds: an integer is written several times faster than a double's shortest form.
                if (e.DurationMs is { } ms) w.WriteNumberValue((long)Math.Round(ms * 1000));
                else w.WriteNullValue();
            }
            if (columns > 11) Write(w, e.Count);
            if (columns > 12) Write(w, e.Detail);
            if (columns > 13) Write(w, e.Stdout);
            if (columns > 14) Write(w, e.Stderr);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.Flush();
        return (_json.WrittenMemory, firstAt, lastAt);
    }

    private static void Write(Utf8JsonWriter w, string? value)
    {
        if (value is null) w.WriteNullValue();
        else w.WriteStringValue(value);
    }

    private static void Write(Utf8JsonWriter w, long? value)
    {
        if (value is { } v) w.WriteNumberValue(v);
        else w.WriteNullValue();
    }

    /// <summary>
    /// Deletes events older than <paramref name="oldest"/> (everything stored before the first event at or after it)
    /// and all but the newest <paramref name="maxEvents"/>. Whole packs are deleted; the first pack left hides its
    /// older events by its <c>skip</c> count. Only the packs' small columns are read, never their JSON, apart from
    /// the one pack that holds the time limit.
    /// </summary>
    private void Trim(sqlite3 db, DateTimeOffset oldest, int maxEvents)
    {
        var expired = _deleteExpired ??= Prepare(db, """
            DELETE FROM event_packs WHERE id < (SELECT id FROM event_packs WHERE last_at_ms >= ?1 ORDER BY id LIMIT 1)
            """);
        raw.sqlite3_bind_int64(expired, 1, oldest.ToUnixTimeMilliseconds());
        Step(db, expired);
        var skipExpired = _skipExpired ??= Prepare(db, """
            UPDATE event_packs SET skip = (SELECT min(key) FROM json_each(events_json) WHERE key >= skip AND json_extract(value, '$[1]') >= ?1)
            WHERE id = (SELECT min(id) FROM event_packs) AND first_at_ms < ?1 AND last_at_ms >= ?1
            """);
        raw.sqlite3_bind_int64(skipExpired, 1, oldest.ToUnixTimeMilliseconds());
        Step(db, skipExpired);

        var packs = _packCounts ??= Prepare(db, "SELECT id, count - skip FROM event_packs ORDER BY id DESC");
        var kept = 0L;
        var (cutPack, cutSkip) = (-1L, 0L);
        try
        {
            while (raw.sqlite3_step(packs) == raw.SQLITE_ROW)
            {
                var (id, count) = (raw.sqlite3_column_int64(packs, 0), raw.sqlite3_column_int64(packs, 1));
                if (kept + count > maxEvents)
                {
                    (cutPack, cutSkip) = (id, kept + count - maxEvents);
                    break;
                }
                kept += count;
            }
        }
        finally
        {
            raw.sqlite3_reset(packs);
        }
        if (cutPack < 0) return;
        var cut = _cut ??= Prepare(db, """
            DELETE FROM event_packs WHERE id < ?1 OR (id = ?1 AND count - skip = ?2);
            """);
        raw.sqlite3_bind_int64(cut, 1, cutPack);
        raw.sqlite3_bind_int64(cut, 2, cutSkip);
        Step(db, cut);
        var skip = _skip ??= Prepare(db, "UPDATE event_packs SET skip = skip + ?2 WHERE id = ?1");
        raw.sqlite3_bind_int64(skip, 1, cutPack);
        raw.sqlite3_bind_int64(skip, 2, cutSkip);
        Step(db, skip);
    }

    private static void Step(sqlite3 db, sqlite3_stmt statement)
    {
        var done = raw.sqlite3_step(statement);
        raw.sqlite3_reset(statement);
        if (done != raw.SQLITE_DONE) Check(db, done);
    }

    private static sqlite3_stmt Prepare(sqlite3 db, string sql)
    {
        Check(db, raw.sqlite3_prepare_v2(db, sql, out var statement));
        return statement;
    }

    private static void Check(sqlite3 db, int code)
    {
        if (code is not (raw.SQLITE_OK or raw.SQLITE_DONE or raw.SQLITE_ROW)) throw new SqliteException(raw.sqlite3_errmsg(db).utf8_to_string(), code);
    }

    public void WriteConfig(DateTimeOffset at, string workerId, string clusterName, string debugUrl, string envJson, string configYaml)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = "INSERT INTO worker_config VALUES ($at, $worker, $cluster, $url, $env, $yaml)";
        command.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$worker", workerId);
        command.Parameters.AddWithValue("$cluster", clusterName);
        command.Parameters.AddWithValue("$url", debugUrl);
        command.Parameters.AddWithValue("$env", envJson);
        command.Parameters.AddWithValue("$yaml", configYaml);
        command.ExecuteNonQuery();
    }

    public void WriteState(DateTimeOffset at, string stateJson)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = "INSERT INTO worker_state VALUES ($at, $state)";
        command.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$state", stateJson);
        command.ExecuteNonQuery();
    }

    /// <summary>Deletes this worker's earlier files last written before <paramref name="oldest"/>; returns how many.</summary>
    public int DeleteFilesOlderThan(DateTimeOffset oldest)
    {
        if (!Directory.Exists(_directory)) return 0;
        var deleted = 0;
        foreach (var file in Directory.EnumerateFiles(_directory, _prefix + "*.db"))
        {
            if (file == Path || File.GetLastWriteTimeUtc(file) >= oldest.UtcDateTime) continue;
            foreach (var part in new[] { file, file + "-wal", file + "-shm" })
                File.Delete(part);
            deleted++;
        }
        return deleted;
    }

    public void Dispose() => Close();

    private SqliteConnection Connection => _connection ?? throw new InvalidOperationException("the recorder's database is not open");

    private void Close()
    {
        foreach (var statement in new[] { _insert, _deleteExpired, _skipExpired, _packCounts, _cut, _skip }) statement?.Dispose();
        (_insert, _deleteExpired, _skipExpired, _packCounts, _cut, _skip) = (null, null, null, null, null, null);
        if (_connection is null) return;
        _connection.Dispose();
        _connection = null;
    }

    private static string Sanitize(string workerId) =>
        string.Concat(workerId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
