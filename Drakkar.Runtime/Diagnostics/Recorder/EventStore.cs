using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Drakkar.Storage;
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
    private static readonly string Schema = $$"""
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
            base_seq INTEGER NOT NULL,
            base_at_ms INTEGER NOT NULL,
            events_json TEXT NOT NULL);
        CREATE VIEW IF NOT EXISTS events AS SELECT
            p.base_seq + json_extract(e.value, '$[0]') AS seq,
            p.base_at_ms + json_extract(e.value, '$[1]') AS at_ms,
            {{KindNames("json_extract(e.value, '$[2]')")}} AS kind,
            json_extract(e.value, '$[10]') AS topic,
            json_extract(e.value, '$[9]') AS partition,
            json_extract(e.value, '$[5]') AS offset,
            json_extract(e.value, '$[3]') AS task_id,
            json_extract(e.value, '$[4]') AS attempt,
            json_extract(e.value, '$[11]') AS sink,
            json_extract(e.value, '$[6]') AS exit_code,
            json_extract(e.value, '$[7]') / 1000.0 AS duration_ms,
            json_extract(e.value, '$[8]') AS count,
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

    /// <summary>The <c>events</c> view's kind: the name of a kind stored by its code (<see cref="FlightEvent.KindsByCode"/>), else the name stored.</summary>
    private static string KindNames(string stored) =>
        $"CASE {stored}" + string.Concat(FlightEvent.KindsByCode.Select((kind, code) => kind is null ? "" : $" WHEN {code} THEN '{kind}'")) + $" ELSE {stored} END";

    // 64 KiB pages: a pack spans a few pages instead of dozens, and the WAL writes and checkpoints a sixteenth as many;
    // wal_autocheckpoint counts pages: 256 keeps the WAL near 16 MiB (the default, 1,000 pages, would let it reach 64 MiB).

    /// <summary>Events per row of <c>event_packs</c>.</summary>
    internal const int PackSize = 1000;

    /// <summary>How every recorder file's name starts (then the worker id, the time it was opened, <c>.db</c>).</summary>
    private const string FilePrefix = "drakkar-recorder-";

    private readonly string _directory;
    private readonly string _prefix;
    private SqliteConnection? _connection;
    private sqlite3_stmt? _insert;
    private sqlite3_stmt? _deleteBefore;
    private sqlite3_stmt? _firstKept;
    private sqlite3_stmt? _skip;
    // The file's packs, oldest first, as the table holds them: retention is decided here, without reading the file.
    // (Asking the table for the packs' small columns read each pack's first page, 64 KiB, on every flush: with the
    // default retention that was a hundred pages per pack written, most of the writer's CPU.)
    private readonly List<PackInfo> _packs = [];
    private bool _packsStale;
    private readonly PackJson _json = new(128 * 1024);

    private readonly bool _storeOutput;

    /// <param name="directory"><c>debug.db_dir</c>.</param>
    /// <param name="workerId">The worker's id, in the file names.</param>
    /// <param name="storeOutput"><c>debug.store_output</c>: false leaves the task events' stdout and stderr out of the file.</param>
    public EventStore(string directory, string workerId, bool storeOutput = true)
    {
        _directory = directory;
        _prefix = $"{FilePrefix}{PrivateFiles.SafeName(workerId)}-";
        _storeOutput = storeOutput;
    }

    /// <summary>The file being written; null before <see cref="Open"/>.</summary>
    public string? Path { get; private set; }

    /// <summary>
    /// Closes the current file (if any) and starts a new one stamped <paramref name="now"/> (<c>-1</c>, <c>-2</c>… added
    /// when that name is taken). The file and its <c>-wal</c> and <c>-shm</c> are created here, new and readable by this
    /// user only (0600): it holds task output, exposed variables and the masked config,
    /// and <c>db_dir</c> may be a shared directory such as <c>/tmp</c>. A name where anything already exists (a file, or
    /// a link another user planted to make the worker write elsewhere), for the database or its companions, is skipped.
    /// </summary>
    public void Open(DateTimeOffset now)
    {
        Close();
        Directory.CreateDirectory(_directory);
        var path = CreatePrivateFile(_prefix + now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture));
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        using (var command = connection.CreateCommand())
        {
            command.CommandText = Schema;
            command.ExecuteNonQuery();
        }
        _connection = connection;
        Path = path;
        LoadPacks();
    }

    /// <summary>
    /// Writes <paramref name="events"/> and applies retention (events older than <paramref name="oldest"/>, all but the
    /// newest <paramref name="maxEvents"/>) in one transaction. Events are stored in packs of up to
    /// <see cref="PackSize"/>, one JSON array per pack row, which the <c>events</c> view expands: a row per event cost
    /// about 2 µs of CPU (SQLite's B-tree work and 17 native calls per row); a pack costs about 0.5 µs per event in
    /// all, the JSON text (<see cref="PackJson"/>), SQLite and the kernel's WAL writes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Append(List<FlightEvent> events, DateTimeOffset oldest, int maxEvents)
    {
        // A batch is stored in seq order, so packs follow one another in seq order except for an event whose thread was
        // descheduled between taking its seq and buffering it (it is in the next batch): retention, which cuts packs
        // from the front, keeps the newest events to within such stragglers.
        if (!InSeqOrder(events)) events.Sort(static (a, b) => a.Seq.CompareTo(b.Seq));
        var db = Connection.Handle!;
        if (_packsStale) LoadPacks();
        Check(db, raw.sqlite3_exec(db, "BEGIN"));
        try
        {
            var insert = _insert ??= Prepare(db,
                "INSERT INTO event_packs (first_at_ms, last_at_ms, count, base_seq, base_at_ms, events_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
            for (var start = 0; start < events.Count; start += PackSize)
            {
                var count = Math.Min(PackSize, events.Count - start);
                var pack = CollectionsMarshal.AsSpan(events).Slice(start, count);
                var (baseSeq, baseAt) = (pack[0].Seq, pack[0].AtUnixMs);
                var (json, firstAt, lastAt) = Encode(pack, baseSeq, baseAt);
                raw.sqlite3_bind_int64(insert, 1, firstAt);
                raw.sqlite3_bind_int64(insert, 2, lastAt);
                raw.sqlite3_bind_int(insert, 3, count);
                raw.sqlite3_bind_int64(insert, 4, baseSeq);
                raw.sqlite3_bind_int64(insert, 5, baseAt);
                raw.sqlite3_bind_text(insert, 6, json.Span);
                Step(db, insert);
                _packs.Add(new PackInfo(raw.sqlite3_last_insert_rowid(db), firstAt, lastAt, count, 0));
            }
            Trim(db, oldest.ToUnixTimeMilliseconds(), maxEvents);
            Check(db, raw.sqlite3_exec(db, "COMMIT"));
        }
        catch
        {
            raw.sqlite3_exec(db, "ROLLBACK");
            // The index may hold what was rolled back: the next round reads it again from the file.
            _packsStale = true;
            throw;
        }
    }

    /// <summary>Reads the index of the file's packs: none in a new file; again after a round was rolled back.</summary>
    private void LoadPacks()
    {
        _packs.Clear();
        _packsStale = false;
        using var command = Connection.CreateCommand();
        command.CommandText = "SELECT id, first_at_ms, last_at_ms, count, skip FROM event_packs ORDER BY id";
        using var reader = command.ExecuteReader();
        while (reader.Read())
            _packs.Add(new PackInfo(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt32(3), reader.GetInt32(4)));
    }

    private static bool InSeqOrder(List<FlightEvent> events)
    {
        for (var i = 1; i < events.Count; i++)
            if (events[i].Seq < events[i - 1].Seq) return false;
        return true;
    }

    /// <summary>
    /// The pack's JSON: an array of events, each an array of the <c>events</c> view's columns, written short: <c>seq</c>
    /// and <c>at_ms</c> as offsets from the pack's <c>base_seq</c> and <c>base_at_ms</c>, the kind as its code
    /// (<see cref="FlightEvent.KindCode"/>), the duration in whole microseconds, a task's columns first (task id,
    /// attempt, offset, exit code, duration, then count, partition, topic, sink, detail, stdout, stderr: the view
    /// names them), and without the trailing nulls (<c>json_extract</c> reads a missing element as null). A task event
    /// is about 55 bytes instead of 100 in the view's order with every null, and every byte is copied, checksummed and
    /// written twice more on its way to disk. Also the pack's oldest and newest times.
    /// Optimized at once: on a quiet worker the writer calls this a few times a minute, too rarely for tiered
    /// compilation to reach it, and unoptimized it cost the recorder more than SQLite did.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private (ReadOnlyMemory<byte> Json, long FirstAtMs, long LastAtMs) Encode(ReadOnlySpan<FlightEvent> pack, long baseSeq, long baseAt)
    {
        var w = _json;
        w.Reset();
        var (firstAt, lastAt) = (long.MaxValue, long.MinValue);
        w.StartArray();
        foreach (ref readonly var e in pack)
        {
            var at = e.AtUnixMs;
            (firstAt, lastAt) = (Math.Min(firstAt, at), Math.Max(lastAt, at));
            w.StartArray();
            w.Number(e.Seq - baseSeq);
            w.Number(at - baseAt);
            if (e.KindCode > 0) w.Number(e.KindCode);
            else w.String(e.Kind);
            var (stdout, stderr) = _storeOutput ? (e.Stdout, e.Stderr) : (null, null);
            var columns = stderr is not null ? 15 : stdout is not null ? 14 : e.Detail is not null ? 13 : e.Sink is not null ? 12
                : e.Topic is not null ? 11 : e.Partition is not null ? 10 : e.Count is not null ? 9 : e.DurationMs is not null ? 8
                : e.ExitCode is not null ? 7 : e.Offset is not null ? 6 : e.Attempt is not null ? 5 : e.HasInlineTaskId || e.TaskId is not null ? 4 : 3;
            if (columns > 3)
            {
                if (e.HasInlineTaskId) w.Ascii(e.InlineTaskId);
                else w.String(e.TaskId);
            }
            if (columns > 4) w.Number(e.Attempt);
            if (columns > 5) w.Number(e.Offset);
            if (columns > 6) w.Number(e.ExitCode);
            // Whole microseconds: an integer is written several times faster than a double's shortest form.
            if (columns > 7) w.Number(e.DurationMs is { } ms ? (long)Math.Round(ms * 1000) : null);
            if (columns > 8) w.Number(e.Count);
            if (columns > 9) w.Number(e.Partition);
            if (columns > 10) w.String(e.Topic);
            if (columns > 11) w.String(e.Sink);
            if (columns > 12) w.String(e.Detail);
            if (columns > 13) w.String(stdout);
            if (columns > 14) w.String(stderr);
            w.EndArray();
        }
        w.EndArray();
        return (w.Written, firstAt, lastAt);
    }

    /// <summary>
    /// Deletes events older than <paramref name="oldestMs"/> (everything stored before the first event at or after it)
    /// and all but the newest <paramref name="maxEvents"/>. Whole packs are deleted; the first pack left hides its
    /// older events by its <c>skip</c> count. Decided from <see cref="_packs"/>; only the one pack that holds the time
    /// limit is read, once (its <c>first_at_ms</c> then moves to its first event kept).
    /// </summary>
    private void Trim(sqlite3 db, long oldestMs, int maxEvents)
    {
        var firstRecent = 0;
        while (firstRecent < _packs.Count && _packs[firstRecent].LastAtMs < oldestMs) firstRecent++;
        // None recent (the clock stepped forward past every event): nothing is deleted for time.
        var anyRecent = firstRecent < _packs.Count;
        if (anyRecent) DeletePacks(db, firstRecent);
        if (anyRecent && _packs[0] is { } first && first.FirstAtMs < oldestMs)
        {
            var firstKept = _firstKept ??= Prepare(db, """
                SELECT e.key, p.base_at_ms + json_extract(e.value, '$[1]') FROM event_packs p, json_each(p.events_json) e
                WHERE p.id = ?1 AND e.key >= p.skip AND p.base_at_ms + json_extract(e.value, '$[1]') >= ?2 ORDER BY e.key LIMIT 1
                """);
            raw.sqlite3_bind_int64(firstKept, 1, first.Id);
            raw.sqlite3_bind_int64(firstKept, 2, oldestMs);
            (int Skip, long AtMs)? kept = null;
            try
            {
                var step = raw.sqlite3_step(firstKept);
                if (step == raw.SQLITE_ROW) kept = (raw.sqlite3_column_int(firstKept, 0), raw.sqlite3_column_int64(firstKept, 1));
                else Check(db, step);
            }
            finally
            {
                raw.sqlite3_reset(firstKept);
            }
            // Its newest event may be one the event limit already hides: then it keeps nothing.
            if (kept is { } k) SetSkip(db, first with { Skip = k.Skip, FirstAtMs = k.AtMs });
            else DeletePacks(db, 1);
        }

        var total = 0L;
        for (var i = _packs.Count - 1; i >= 0; i--)
        {
            var pack = _packs[i];
            var count = pack.Count - pack.Skip;
            if (total + count <= maxEvents)
            {
                total += count;
                continue;
            }
            // The newest maxEvents end inside (or just after) this pack: it keeps its last maxEvents - total events.
            var cutSkip = (int)(total + count - maxEvents);
            if (cutSkip == count)
            {
                DeletePacks(db, i + 1);
                return;
            }
            DeletePacks(db, i);
            SetSkip(db, pack with { Skip = pack.Skip + cutSkip });
            return;
        }
    }

    /// <summary>Stores the oldest pack's new <c>skip</c> and <c>first_at_ms</c>, in the file and in the index.</summary>
    private void SetSkip(sqlite3 db, PackInfo pack)
    {
        var skip = _skip ??= Prepare(db, "UPDATE event_packs SET skip = ?2, first_at_ms = ?3 WHERE id = ?1");
        raw.sqlite3_bind_int64(skip, 1, pack.Id);
        raw.sqlite3_bind_int(skip, 2, pack.Skip);
        raw.sqlite3_bind_int64(skip, 3, pack.FirstAtMs);
        Step(db, skip);
        _packs[0] = pack;
    }

    /// <summary>Deletes the oldest <paramref name="count"/> packs.</summary>
    private void DeletePacks(sqlite3 db, int count)
    {
        if (count == 0) return;
        var delete = _deleteBefore ??= Prepare(db, "DELETE FROM event_packs WHERE id <= ?1");
        raw.sqlite3_bind_int64(delete, 1, _packs[count - 1].Id);
        Step(db, delete);
        _packs.RemoveRange(0, count);
    }

    /// <summary>A row of <c>event_packs</c> without its events.</summary>
    private readonly record struct PackInfo(long Id, long FirstAtMs, long LastAtMs, int Count, int Skip);

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

    /// <summary>
    /// Deletes the recorder files in the directory last written (the database or its write-ahead log) before
    /// <paramref name="oldest"/>: this worker's earlier files, and those of earlier runs under other worker ids (a worker
    /// without <c>WORKER_ID</c> gets a new id at each start, so nothing else would ever delete its earlier runs' files).
    /// Only regular files of this user that are recorder databases (they have <c>event_packs</c>) are deleted; another
    /// user's file, a link, or another program's file with such a name is left alone. Returns how many.
    /// </summary>
    public int DeleteFilesOlderThan(DateTimeOffset oldest) =>
        PrivateFiles.DeleteDatabasesWrittenBefore(_directory, FilePrefix + "*.db", Path, oldest.UtcDateTime, PrivateFiles.LastWritten,
            file => PrivateFiles.IsDatabaseWithTable(file, "event_packs")).Count;

    public void Dispose() => Close();

    private SqliteConnection Connection => _connection ?? throw new InvalidOperationException("the recorder's database is not open");

    private void Close()
    {
        foreach (var statement in new[] { _insert, _deleteBefore, _firstKept, _skip }) statement?.Dispose();
        (_insert, _deleteBefore, _firstKept, _skip) = (null, null, null, null);
        _packs.Clear();
        if (_connection is null) return;
        _connection.Dispose();
        _connection = null;
    }

    private string CreatePrivateFile(string stem)
    {
        for (var n = 0; n < 100; n++)
        {
            var path = System.IO.Path.Combine(_directory, n == 0 ? stem + ".db" : $"{stem}-{n.ToString(CultureInfo.InvariantCulture)}.db");
            if (!PrivateFiles.DatabaseTaken(path) && PrivateFiles.TryCreateDatabase(path) && PrivateFiles.NotOwnDatabase(path) is null) return path;
        }
        throw new IOException($"the flight recorder found no free file name for {stem}.db in {_directory} (debug.db_dir)");
    }
}
