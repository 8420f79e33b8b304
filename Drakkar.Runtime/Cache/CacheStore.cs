using Microsoft.Data.Sqlite;

namespace Drakkar.Cache;

/// <summary>Who owns a cache database: what a peer compares to decide which scopes it may pull.</summary>
internal sealed record CacheOwner(string WorkerId, string ClusterName, string ConsumerGroup);

/// <summary>
/// One worker's cache database (<c>{db_dir}/{worker_id}-cache.db</c>, SQLite in WAL mode so peers can read it while
/// it is written). Every write, local or pulled from a peer, goes through the same last-write-wins upsert, so the two
/// paths cannot disagree. One connection behind one gate: Microsoft.Data.Sqlite connections are not thread-safe.
/// </summary>
internal sealed class CacheStore : IAsyncDisposable
{
    public const string FileSuffix = "-cache.db";

    // The table every cache database has: what tells it from another program's file with such a name.
    private const string OwnerTable = "cache_owner";

    /// <summary>Whether <paramref name="path"/> is a worker's cache database, not another program's file with such a name.</summary>
    public static bool IsCacheFile(string path) => Storage.PrivateFiles.IsDatabaseWithTable(path, OwnerTable);

    /// <summary>Whether the peer database open on <paramref name="peer"/> is a worker's cache database.</summary>
    public static bool IsCacheDatabase(SqliteConnection peer) => Storage.PrivateFiles.HasTable(peer, OwnerTable);

    private const string Columns = "key, value, scope, created_at_ms, updated_at_ms, expires_at_ms, origin_worker_id";

    // The newer write wins; on equal times the smaller origin id, so every worker settles on the same value.
    private const string UpsertSql = $"""
        INSERT INTO cache_entries ({Columns}) VALUES ($key, $value, $scope, $created, $updated, $expires, $origin)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, scope = excluded.scope, created_at_ms = excluded.created_at_ms,
            updated_at_ms = excluded.updated_at_ms, expires_at_ms = excluded.expires_at_ms, origin_worker_id = excluded.origin_worker_id
        WHERE excluded.updated_at_ms > cache_entries.updated_at_ms
           OR (excluded.updated_at_ms = cache_entries.updated_at_ms AND excluded.origin_worker_id < cache_entries.origin_worker_id)
        RETURNING key
        """;

    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);

    private CacheStore(SqliteConnection connection, string path)
    {
        _connection = connection;
        Path = path;
    }

    public string Path { get; }

    public static async Task<CacheStore> OpenAsync(string path, CacheOwner owner, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.CommandText = """
                PRAGMA journal_mode = WAL;
                PRAGMA synchronous = NORMAL;
                CREATE TABLE IF NOT EXISTS cache_entries (
                    key TEXT PRIMARY KEY, value BLOB NOT NULL, scope TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
                    updated_at_ms INTEGER NOT NULL, expires_at_ms INTEGER, origin_worker_id TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS cache_entries_by_update ON cache_entries (updated_at_ms, key);
                CREATE TABLE IF NOT EXISTS cache_owner (worker_id TEXT NOT NULL, cluster_name TEXT NOT NULL, consumer_group TEXT NOT NULL);
                DELETE FROM cache_owner;
                INSERT INTO cache_owner VALUES ($worker, $cluster, $group);
                """;
            command.Parameters.AddWithValue("$worker", owner.WorkerId);
            command.Parameters.AddWithValue("$cluster", owner.ClusterName);
            command.Parameters.AddWithValue("$group", owner.ConsumerGroup);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return new CacheStore(connection, path);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Applies sets (an entry) and deletes (null) in one transaction.</summary>
    public async Task WriteAsync(IReadOnlyList<KeyValuePair<string, CacheEntry?>> operations, CancellationToken cancellationToken)
    {
        if (operations.Count == 0) return;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var transaction = (SqliteTransaction)await _connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var upsert = Upsert(transaction);
            await using var delete = _connection.CreateCommand();
            delete.Transaction = transaction;
            delete.CommandText = "DELETE FROM cache_entries WHERE key = $key";
            var deleteKey = delete.Parameters.Add("$key", SqliteType.Text);
            foreach (var (key, entry) in operations)
            {
                if (entry is null)
                {
                    deleteKey.Value = key;
                    await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await ExecuteUpsertAsync(upsert, entry, cancellationToken).ConfigureAwait(false);
                }
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Merges entries pulled from a peer; returns those that won over what this database held.</summary>
    public async Task<List<CacheEntry>> MergeAsync(IReadOnlyList<CacheEntry> entries, CancellationToken cancellationToken)
    {
        var won = new List<CacheEntry>();
        if (entries.Count == 0) return won;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var transaction = (SqliteTransaction)await _connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var upsert = Upsert(transaction);
            foreach (var entry in entries)
                if (await ExecuteUpsertAsync(upsert, entry, cancellationToken).ConfigureAwait(false)) won.Add(entry);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return won;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The unexpired entry stored under <paramref name="key"/>, or null.</summary>
    public async Task<CacheEntry?> ReadAsync(string key, long nowMs, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = _connection.CreateCommand();
            command.CommandText = $"SELECT {Columns} FROM cache_entries WHERE key = $key AND (expires_at_ms IS NULL OR expires_at_ms > $now)";
            command.Parameters.AddWithValue("$key", key);
            command.Parameters.AddWithValue("$now", nowMs);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadEntry(reader) : null;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Deletes expired rows; returns how many.</summary>
    public async Task<int> DeleteExpiredAsync(long nowMs, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = _connection.CreateCommand();
            command.CommandText = "DELETE FROM cache_entries WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= $now";
            command.Parameters.AddWithValue("$now", nowMs);
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Opens a peer's database read-only for one sync cycle; <paramref name="timeout"/> bounds how long SQLite waits
    /// for a lock the peer holds.
    /// </summary>
    public static async Task<SqliteConnection> OpenPeerAsync(string path, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false,
            DefaultTimeout = Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds)),
        }.ToString());
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public static async Task<CacheOwner?> ReadOwnerAsync(SqliteConnection peer, CancellationToken cancellationToken)
    {
        await using var command = peer.CreateCommand();
        command.CommandText = "SELECT worker_id, cluster_name, consumer_group FROM cache_owner LIMIT 1";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new CacheOwner(reader.GetString(0), reader.GetString(1), reader.GetString(2))
            : null;
    }

    /// <summary>
    /// A peer's unexpired entries of the given scopes written after <paramref name="after"/> (update time, then key:
    /// a page boundary inside one millisecond loses nothing), oldest first, at most <paramref name="limit"/>.
    /// </summary>
    public static async Task<List<CacheEntry>> ReadPeerPageAsync(SqliteConnection peer, (long UpdatedAtMs, string Key) after,
        IReadOnlyList<CacheScope> scopes, int limit, long nowMs, CancellationToken cancellationToken)
    {
        await using var command = peer.CreateCommand();
        var scopeList = string.Join(", ", scopes.Select((_, i) => $"$scope{i}"));
        command.CommandText = $"""
            SELECT {Columns} FROM cache_entries
            WHERE (updated_at_ms, key) > ($updated, $key) AND scope IN ({scopeList})
              AND (expires_at_ms IS NULL OR expires_at_ms > $now)
            ORDER BY updated_at_ms, key LIMIT $limit
            """;
        command.Parameters.AddWithValue("$updated", after.UpdatedAtMs);
        command.Parameters.AddWithValue("$key", after.Key);
        command.Parameters.AddWithValue("$now", nowMs);
        command.Parameters.AddWithValue("$limit", limit);
        for (var i = 0; i < scopes.Count; i++) command.Parameters.AddWithValue($"$scope{i}", ScopeName(scopes[i]));
        var page = new List<CacheEntry>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) page.Add(ReadEntry(reader));
        return page;
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    private SqliteCommand Upsert(SqliteTransaction transaction)
    {
        var command = _connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = UpsertSql;
        foreach (var name in (string[])["$key", "$value", "$scope", "$created", "$updated", "$expires", "$origin"])
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        return command;
    }

    /// <summary>Runs the upsert for one entry; true when the entry was stored (it won).</summary>
    private static async Task<bool> ExecuteUpsertAsync(SqliteCommand upsert, CacheEntry entry, CancellationToken cancellationToken)
    {
        var p = upsert.Parameters;
        p["$key"].Value = entry.Key;
        p["$value"].Value = entry.Value;
        p["$scope"].Value = ScopeName(entry.Scope);
        p["$created"].Value = entry.CreatedAtMs;
        p["$updated"].Value = entry.UpdatedAtMs;
        p["$expires"].Value = entry.ExpiresAtMs is { } expires ? expires : DBNull.Value;
        p["$origin"].Value = entry.OriginWorkerId;
        return await upsert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
    }

    private static CacheEntry ReadEntry(SqliteDataReader reader) => new(
        reader.GetString(0), (byte[])reader.GetValue(1), ParseScope(reader.GetString(2)), reader.GetInt64(3), reader.GetInt64(4),
        reader.IsDBNull(5) ? null : reader.GetInt64(5), reader.GetString(6));

    /// <summary>The scope as stored: Drakkar's names.</summary>
    private static string ScopeName(CacheScope scope) => scope switch
    {
        CacheScope.Cluster => "cluster",
        CacheScope.Global => "global",
        _ => "local",
    };

    private static CacheScope ParseScope(string name) => name switch
    {
        "cluster" => CacheScope.Cluster,
        "global" => CacheScope.Global,
        _ => CacheScope.Local,
    };
}
