using System.Globalization;
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
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        CREATE TABLE IF NOT EXISTS events (
            seq INTEGER PRIMARY KEY,
            at_ms INTEGER NOT NULL,
            kind TEXT NOT NULL,
            topic TEXT,
            partition INTEGER,
            offset INTEGER,
            task_id TEXT,
            attempt INTEGER,
            sink TEXT,
            exit_code INTEGER,
            duration_ms REAL,
            count INTEGER,
            detail TEXT,
            stdout TEXT,
            stderr TEXT);
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

    private readonly string _directory;
    private readonly string _prefix;
    private SqliteConnection? _connection;
    private sqlite3_stmt? _insert;

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
    /// Writes <paramref name="events"/> in one transaction, through SQLite's own prepared-statement calls: binding
    /// through ADO.NET parameters cost several times more per row, on the cores the pipeline shares.
    /// </summary>
    public void Append(IReadOnlyList<FlightEvent> events)
    {
        var db = Connection.Handle!;
        Check(db, raw.sqlite3_exec(db, "BEGIN"));
        try
        {
            var statement = _insert ??= Prepare(db, """
                INSERT INTO events (seq, at_ms, kind, topic, partition, offset, task_id, attempt, sink, exit_code, duration_ms, count, detail, stdout, stderr)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                """);
            foreach (var e in events)
            {
                raw.sqlite3_bind_int64(statement, 1, e.Seq);
                raw.sqlite3_bind_int64(statement, 2, e.At.ToUnixTimeMilliseconds());
                raw.sqlite3_bind_text(statement, 3, e.Kind);
                Bind(statement, 4, e.Topic);
                Bind(statement, 5, e.Partition);
                Bind(statement, 6, e.Offset);
                Bind(statement, 7, e.TaskId);
                Bind(statement, 8, e.Attempt);
                Bind(statement, 9, e.Sink);
                Bind(statement, 10, e.ExitCode);
                if (e.DurationMs is { } ms) raw.sqlite3_bind_double(statement, 11, ms);
                else raw.sqlite3_bind_null(statement, 11);
                Bind(statement, 12, e.Count);
                Bind(statement, 13, e.Detail);
                Bind(statement, 14, e.Stdout);
                Bind(statement, 15, e.Stderr);
                var done = raw.sqlite3_step(statement);
                raw.sqlite3_reset(statement);
                if (done != raw.SQLITE_DONE) Check(db, done);
            }
            Check(db, raw.sqlite3_exec(db, "COMMIT"));
        }
        catch
        {
            raw.sqlite3_exec(db, "ROLLBACK");
            throw;
        }
    }

    private static sqlite3_stmt Prepare(sqlite3 db, string sql)
    {
        Check(db, raw.sqlite3_prepare_v2(db, sql, out var statement));
        return statement;
    }

    private static void Bind(sqlite3_stmt statement, int index, string? value)
    {
        if (value is null) raw.sqlite3_bind_null(statement, index);
        else raw.sqlite3_bind_text(statement, index, value);
    }

    private static void Bind(sqlite3_stmt statement, int index, long? value)
    {
        if (value is { } v) raw.sqlite3_bind_int64(statement, index, v);
        else raw.sqlite3_bind_null(statement, index);
    }

    private static void Check(sqlite3 db, int code)
    {
        if (code is not (raw.SQLITE_OK or raw.SQLITE_DONE or raw.SQLITE_ROW)) throw new SqliteException(raw.sqlite3_errmsg(db).utf8_to_string(), code);
    }

    /// <summary>
    /// Deletes rows older than <paramref name="oldest"/> and all but the newest <paramref name="maxEvents"/>. Both walk
    /// the primary key from the oldest row, so a file with nothing to delete costs one row read (times grow with
    /// seq, apart from a consumed range's start, which is at most one flush interval older).
    /// </summary>
    public void Trim(DateTimeOffset oldest, int maxEvents)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = """
            DELETE FROM events WHERE seq < (SELECT seq FROM events WHERE at_ms >= $oldest ORDER BY seq LIMIT 1);
            DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT max(0, (SELECT count(*) FROM events) - $keep));
            DELETE FROM worker_state WHERE at_ms < $oldest;
            """;
        command.Parameters.AddWithValue("$oldest", oldest.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$keep", maxEvents);
        command.ExecuteNonQuery();
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
        _insert?.Dispose();
        _insert = null;
        if (_connection is null) return;
        _connection.Dispose();
        _connection = null;
    }

    private static string Sanitize(string workerId) =>
        string.Concat(workerId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
