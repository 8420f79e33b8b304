using System.Globalization;
using Microsoft.Data.Sqlite;

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
        CREATE INDEX IF NOT EXISTS events_at ON events (at_ms);
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

    /// <summary>Writes <paramref name="events"/> in one transaction.</summary>
    public void Append(IReadOnlyList<FlightEvent> events)
    {
        var connection = Connection;
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT OR REPLACE INTO events (seq, at_ms, kind, topic, partition, offset, task_id, attempt, sink, exit_code, duration_ms, count, detail, stdout, stderr)
            VALUES ($seq, $at, $kind, $topic, $partition, $offset, $task, $attempt, $sink, $exit, $duration, $count, $detail, $stdout, $stderr)
            """;
        var p = command.Parameters;
        string[] names = ["$seq", "$at", "$kind", "$topic", "$partition", "$offset", "$task", "$attempt", "$sink", "$exit", "$duration", "$count", "$detail", "$stdout", "$stderr"];
        foreach (var name in names) p.Add(new SqliteParameter { ParameterName = name });
        command.Prepare();
        foreach (var e in events)
        {
            p[0].Value = e.Seq;
            p[1].Value = e.At.ToUnixTimeMilliseconds();
            p[2].Value = e.Kind;
            p[3].Value = (object?)e.Topic ?? DBNull.Value;
            p[4].Value = (object?)e.Partition ?? DBNull.Value;
            p[5].Value = (object?)e.Offset ?? DBNull.Value;
            p[6].Value = (object?)e.TaskId ?? DBNull.Value;
            p[7].Value = (object?)e.Attempt ?? DBNull.Value;
            p[8].Value = (object?)e.Sink ?? DBNull.Value;
            p[9].Value = (object?)e.ExitCode ?? DBNull.Value;
            p[10].Value = (object?)e.DurationMs ?? DBNull.Value;
            p[11].Value = (object?)e.Count ?? DBNull.Value;
            p[12].Value = (object?)e.Detail ?? DBNull.Value;
            p[13].Value = (object?)e.Stdout ?? DBNull.Value;
            p[14].Value = (object?)e.Stderr ?? DBNull.Value;
            command.ExecuteNonQuery();
        }
        transaction.Commit();
    }

    /// <summary>Deletes rows older than <paramref name="oldest"/> and all but the newest <paramref name="maxEvents"/>.</summary>
    public void Trim(DateTimeOffset oldest, int maxEvents)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = """
            DELETE FROM events WHERE at_ms < $oldest;
            DELETE FROM events WHERE seq <= (SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET $keep);
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
        if (_connection is null) return;
        _connection.Dispose();
        _connection = null;
    }

    private static string Sanitize(string workerId) =>
        string.Concat(workerId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
