using System.Buffers;
using System.Text;
using System.Text.Json;
using Drakkar.Cache;
using Drakkar.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar;

/// <summary>
/// The handler's key/value cache (Drakkar's <c>self.cache</c>): values live in a bounded in-memory LRU, are written
/// behind to this worker's SQLite file every <c>cache.flush_interval_seconds</c>, expire by TTL, and are pulled from
/// the other workers' files in the same directory every <c>cache.peer_sync.interval_seconds</c> (eventually
/// consistent, last write wins). Values are bytes, strings, or <see cref="PayloadAttribute"/> types through their
/// generated JSON writer and reader. With <c>cache.enabled: false</c> every read misses and every write is dropped,
/// so handler code needs no guard.
/// </summary>
public sealed partial class DrakkarCache : IAsyncDisposable
{
    private readonly CacheConfig _config;
    private readonly CacheOwner _owner;
    private readonly CacheStore? _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // Held while the cache is open, so that no peer's cleanup deletes the file of a running worker (null: not taken).
    private FileStream? _inUse;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LinkedListNode<CacheEntry>> _memory = new(StringComparer.Ordinal);
    private readonly LinkedList<CacheEntry> _recency = new();
    // Writes not yet in the database: an entry to store, or null for a delete. Survives LRU eviction.
    private readonly Dictionary<string, CacheEntry?> _dirty = new(StringComparer.Ordinal);
    // Per peer file: the last (update time, key) pulled. Starts over on restart, as in Drakkar (LWW makes it harmless).
    private readonly Dictionary<string, (long, string)> _peerCursors = new(StringComparer.Ordinal);
    // One sync at a time (the periodic run, or a direct call): the cursors are not shared state.
    private readonly SemaphoreSlim _syncing = new(1, 1);
    // Peer files refused (another user's, a link, or not a cache database), each logged once; touched only under _syncing.
    private readonly HashSet<string> _refusedPeers = new(StringComparer.Ordinal);

    /// <summary>The cache of a worker with <c>cache.enabled: false</c>: reads miss, writes are dropped.</summary>
    public static DrakkarCache Disabled { get; } = new(new CacheConfig(), new CacheOwner("", "", ""), null, TimeProvider.System, NullLogger.Instance);

    private DrakkarCache(CacheConfig config, CacheOwner owner, CacheStore? store, TimeProvider time, ILogger logger)
    {
        _config = config;
        _owner = owner;
        _store = store;
        _time = time;
        _logger = logger;
    }

    /// <summary>False for <see cref="Disabled"/>.</summary>
    public bool Enabled => _store is not null;

    /// <summary>This worker's database file; null when disabled.</summary>
    public string? DatabasePath => _store?.Path;

    /// <summary>
    /// Opens the cache <paramref name="config"/> describes for worker <paramref name="workerId"/>: its file is
    /// <c>{cache.db_dir or debug.db_dir}/{workerId}-cache.db</c> (the directory is created). Returns
    /// <see cref="Disabled"/> when <c>cache.enabled</c> is false. Run <see cref="BackgroundTasks"/> to flush, clean up
    /// and sync.
    /// </summary>
    public static async Task<DrakkarCache> OpenAsync(DrakkarConfig config, string workerId, TimeProvider? time = null, ILogger? logger = null,
        CancellationToken cancellationToken = default)
    {
        if (!config.Cache.Enabled) return Disabled;
        var directory = config.Cache.DbDir.Length > 0 ? config.Cache.DbDir : config.Debug.DbDir;
        if (directory.Trim().Length == 0)
            throw new Hosting.WorkerStartupException("cache.db_dir must name a directory when cache.enabled is true and debug.db_dir is empty");
        var path = Path.Combine(directory, FileName(workerId));
        var owner = new CacheOwner(workerId, config.ClusterName, config.Kafka.ConsumerGroup);
        try
        {
            Directory.CreateDirectory(directory);
            // Created here when new (0600), its -wal and -shm too, so that SQLite never creates a file itself. An existing file (this worker's, from its last run) is opened only when it and
            // its SQLite companions are regular files of this user: in a shared directory (the default /tmp) a file or
            // a link another user placed at the name would feed this worker's cache or redirect its writes.
            PrivateFiles.TryCreateDatabase(path);
            if (PrivateFiles.NotOwnDatabase(path) is { } refused)
                throw new IOException($"{refused}: refusing to use it as this worker's cache (another user may have placed it there); " +
                    "remove it, or use a directory of the worker's own");
            var inUse = PrivateFiles.HoldInUseLock(path);
            CacheStore store;
            try
            {
                store = await CacheStore.OpenAsync(path, owner, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // A file that cannot be opened (not a database, unreadable) leaves this worker's in-use lock free again.
                inUse?.Dispose();
                throw;
            }
            var cache = new DrakkarCache(config.Cache, owner, store, time ?? TimeProvider.System, logger ?? NullLogger.Instance) { _inUse = inUse };
            if (inUse is null) cache.LogInUseElsewhere(path);
            // A file reopened after a long stop is alive again before a peer's cleanup can take it for stale.
            cache.MarkAlive();
            return cache;
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or IOException or UnauthorizedAccessException)
        {
            var key = config.Cache.DbDir.Length > 0 ? "cache.db_dir" : "debug.db_dir (cache.db_dir is empty)";
            // "'/x' is a file, not a directory" says more than the exception's "Could not find a part of the path".
            var reason = PrivateFiles.UnusableDirectory(directory) ?? e.Message;
            throw new Hosting.WorkerStartupException($"the cache file {path} cannot be opened ({key}: '{directory}'): {reason}", e);
        }
    }

    /// <summary>
    /// The cache's own periodic work, run like the handler's periodic methods: <c>cache.flush</c>,
    /// <c>cache.cleanup</c> and, when <c>cache.peer_sync.enabled</c>, <c>cache.sync</c> (bounded by
    /// <c>cycle_deadline_seconds</c>; a cycle that overruns fails and the next one runs on schedule). Empty when disabled.
    /// </summary>
    internal IReadOnlyList<PeriodicRegistration> BackgroundTasks
    {
        get
        {
            if (!Enabled) return [];
            var tasks = new List<PeriodicRegistration>
            {
                new("cache.flush", TimeSpan.FromSeconds(_config.FlushIntervalSeconds), PeriodicOnError.Continue, FlushAsync),
                new("cache.cleanup", TimeSpan.FromSeconds(_config.CleanupIntervalSeconds), PeriodicOnError.Continue, CleanupAsync),
            };
            if (_config.PeerSync.Enabled)
                tasks.Add(new("cache.sync", TimeSpan.FromSeconds(_config.PeerSync.IntervalSeconds), PeriodicOnError.Continue, SyncCycleAsync));
            return tasks;
        }
    }

    /// <summary>Stores <paramref name="value"/> as bytes. <paramref name="ttl"/> null never expires.</summary>
    public void Set(string key, ReadOnlySpan<byte> value, TimeSpan? ttl = null, CacheScope scope = CacheScope.Local) =>
        Put(key, value.ToArray(), ttl, scope);

    /// <summary>Stores <paramref name="value"/> as UTF-8 text.</summary>
    public void Set(string key, string value, TimeSpan? ttl = null, CacheScope scope = CacheScope.Local) =>
        Put(key, Encoding.UTF8.GetBytes(value), ttl, scope);

    /// <summary>Stores <paramref name="value"/> as its generated compact JSON.</summary>
    public void Set<T>(string key, T value, TimeSpan? ttl = null, CacheScope scope = CacheScope.Local) where T : IPayload<T>
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer)) T.WriteJson(writer, value);
        Put(key, buffer.WrittenSpan.ToArray(), ttl, scope);
    }

    /// <summary>The bytes under <paramref name="key"/>: from memory, else from the database (then kept in memory); null on a miss.</summary>
    public async ValueTask<byte[]?> GetBytesAsync(string key, CancellationToken cancellationToken = default) =>
        (await GetEntryAsync(key, cancellationToken).ConfigureAwait(false))?.Value;

    /// <summary>The text under <paramref name="key"/>, or null.</summary>
    public async ValueTask<string?> GetStringAsync(string key, CancellationToken cancellationToken = default) =>
        await GetBytesAsync(key, cancellationToken).ConfigureAwait(false) is { } bytes ? Encoding.UTF8.GetString(bytes) : null;

    /// <summary>The <typeparamref name="T"/> under <paramref name="key"/>, read by its generated JSON reader; null on a miss.</summary>
    /// <exception cref="InvalidDataException">The value stored there is not a <typeparamref name="T"/>.</exception>
    public async ValueTask<T?> GetAsync<T>(string key, CancellationToken cancellationToken = default) where T : class, IPayload<T>
    {
        if (await GetBytesAsync(key, cancellationToken).ConfigureAwait(false) is not { } bytes) return null;
        var (value, error) = PayloadDecoder.Decode<T>(bytes);
        return value ?? throw new InvalidDataException($"cache key '{key}': {error}");
    }

    /// <summary>Memory only, no I/O (for <c>Arrange</c>'s hot path): the bytes under <paramref name="key"/>, or null.</summary>
    public byte[]? Peek(string key)
    {
        lock (_gate) return Touch(key, _time.GetUtcNow().ToUnixTimeMilliseconds())?.Value;
    }

    /// <summary>True when <paramref name="key"/> is in memory and unexpired (memory only; the LRU order is not changed).</summary>
    public bool Contains(string key)
    {
        lock (_gate)
            return _memory.TryGetValue(key, out var node) && !node.Value.ExpiredAt(_time.GetUtcNow().ToUnixTimeMilliseconds());
    }

    /// <summary>
    /// Removes <paramref name="key"/> from this worker (memory now, its database at the next flush); true when it was
    /// in memory. Peers keep copies they already pulled, and may hand a newer one back: use a TTL to invalidate
    /// across workers.
    /// </summary>
    public bool Delete(string key)
    {
        if (!Enabled) return false;
        lock (_gate)
        {
            _dirty[key] = null;
            if (!_memory.Remove(key, out var node)) return false;
            _recency.Remove(node);
            return true;
        }
    }

    /// <summary>Writes pending sets and deletes to the database (the <c>cache.flush</c> task; also at dispose).</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_store is null) return;
        KeyValuePair<string, CacheEntry?>[] pending;
        lock (_gate)
        {
            if (_dirty.Count == 0) return;
            pending = [.. _dirty];
            _dirty.Clear();
        }
        try
        {
            await _store.WriteAsync(pending, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Nothing was written (one transaction): put back what no later call replaced, for the next flush.
            lock (_gate)
                foreach (var (key, entry) in pending) _dirty.TryAdd(key, entry);
            throw;
        }
    }

    /// <summary>
    /// The <c>cache.cleanup</c> task: drops expired entries from memory and the database, marks this worker's file as
    /// alive, and deletes the cache files in the directory not written for <c>cache.stale_file_hours</c> (those of
    /// workers that are gone).
    /// </summary>
    public async ValueTask CleanupAsync(CancellationToken cancellationToken = default)
    {
        if (_store is null) return;
        MarkAlive();
        DeleteStaleFiles();
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_gate)
        {
            foreach (var (key, node) in _memory.Where(e => e.Value.Value.ExpiredAt(now)).ToArray())
            {
                _memory.Remove(key);
                _recency.Remove(node);
            }
        }
        var deleted = await _store.DeleteExpiredAsync(now, cancellationToken).ConfigureAwait(false);
        if (deleted > 0) LogExpired(deleted);
    }

    /// <summary>
    /// Pulls from every other worker's file in the cache directory the entries it may see (cluster scope from workers
    /// of the same consumer group and cluster name, global scope from all), in pages of <c>peer_sync.batch_size</c>,
    /// and merges them last-write-wins. A peer that fails (missing, locked past <c>peer_sync.timeout_seconds</c>,
    /// corrupt) is logged and skipped; the others still sync. Returns how many entries were taken.
    /// </summary>
    public async ValueTask<int> SyncWithPeersAsync(CancellationToken cancellationToken = default)
    {
        if (_store is null) return 0;
        var directory = Path.GetDirectoryName(_store.Path)!;
        var taken = 0;
        await _syncing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var files = Directory.EnumerateFiles(directory, "*" + CacheStore.FileSuffix).Order(StringComparer.Ordinal).ToList();
            // Cursors of files that are gone (a stale peer deleted) would otherwise pile up for the life of the worker.
            foreach (var gone in _peerCursors.Keys.Except(files, StringComparer.Ordinal).ToList()) _peerCursors.Remove(gone);
            foreach (var file in files)
            {
                if (string.Equals(Path.GetFullPath(file), Path.GetFullPath(_store.Path), StringComparison.Ordinal)) continue;
                cancellationToken.ThrowIfCancellationRequested();
                // Peers run as this worker's user: a file of another user (or a link) is never read, so that nobody else
                // who can write to the directory can feed entries to this worker.
                if (PrivateFiles.NotOwnDatabase(file) is { } refused)
                {
                    if (_refusedPeers.Add(file)) LogPeerRefused(refused);
                    continue;
                }
                try
                {
                    // Another program's file with a name like ours (the default directory is /tmp): skipped quietly, not a
                    // warning with a stack trace every cycle. A peer that has just created its file is read once it has a schema.
                    if (await PullPeerAsync(file, cancellationToken).ConfigureAwait(false) is { } pulled) taken += pulled;
                    else if (_refusedPeers.Add(file)) LogNotACacheFile(Path.GetFileName(file));
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    LogPeerFailed(e, Path.GetFileName(file));
                }
            }
        }
        finally
        {
            _syncing.Release();
        }
        return taken;
    }

    public async ValueTask DisposeAsync()
    {
        if (_store is null) return;
        try
        {
            await FlushAsync().ConfigureAwait(false);
        }
        finally
        {
            await _store.DisposeAsync().ConfigureAwait(false);
            _inUse?.Dispose();
        }
    }

    private static string FileName(string workerId) => PrivateFiles.SafeName(workerId) + CacheStore.FileSuffix;

    /// <summary>
    /// Sets this worker's database file's modification time to now, at open and at each cleanup: peers tell a running
    /// worker's file from a gone one's by that time alone. (Not by the write-ahead log's: a worker's flushes change only
    /// its log until a checkpoint, and a peer's read-only sync changes the log's time too.)
    /// </summary>
    private void MarkAlive()
    {
        try
        {
            File.SetLastWriteTimeUtc(_store!.Path, _time.GetUtcNow().UtcDateTime);
        }
        catch (FileNotFoundException e)
        {
            throw new IOException($"this worker's cache file {_store!.Path} was deleted while the worker uses it (by hand, or by a " +
                "worker of an older version sharing cache.db_dir): entries written from now on reach no peer and are gone at exit; " +
                "restart the worker to start a new file", e);
        }
    }

    private void DeleteStaleFiles()
    {
        if (_config.StaleFileHours is not { } hours) return;
        var oldest = _time.GetUtcNow().UtcDateTime - TimeSpan.FromHours(hours);
        var directory = Path.GetDirectoryName(_store!.Path)!;
        foreach (var file in PrivateFiles.DeleteDatabasesWrittenBefore(directory, "*" + CacheStore.FileSuffix, _store.Path, oldest, File.GetLastWriteTimeUtc,
            CacheStore.IsCacheFile))
            LogStaleDeleted(Path.GetFileName(file), hours);
    }

    private async ValueTask SyncCycleAsync(CancellationToken stop)
    {
        var deadline = TimeSpan.FromSeconds(_config.PeerSync.CycleDeadlineSeconds ?? _config.PeerSync.IntervalSeconds * 0.9);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(stop);
        bounded.CancelAfter(deadline);
        try
        {
            await SyncWithPeersAsync(bounded.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            throw new TimeoutException($"cache peer sync did not finish within cache.peer_sync.cycle_deadline_seconds ({deadline.TotalSeconds:0.###}s)");
        }
    }

    /// <summary>Pulls what a peer's file holds that this worker may take; null when the file is not a cache database.</summary>
    private async Task<int?> PullPeerAsync(string file, CancellationToken cancellationToken)
    {
        var timeout = TimeSpan.FromSeconds(_config.PeerSync.TimeoutSeconds);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(timeout);
        await using var peer = await CacheStore.OpenPeerAsync(file, timeout, bounded.Token).ConfigureAwait(false);
        if (!CacheStore.IsCacheDatabase(peer)) return null;
        if (await CacheStore.ReadOwnerAsync(peer, bounded.Token).ConfigureAwait(false) is not { } owner || owner.WorkerId == _owner.WorkerId) return 0;
        CacheScope[] scopes = owner.ClusterName == _owner.ClusterName && owner.ConsumerGroup == _owner.ConsumerGroup
            ? [CacheScope.Cluster, CacheScope.Global]
            : [CacheScope.Global];
        var cursor = _peerCursors.TryGetValue(file, out var saved) ? saved : (-1L, "");
        var taken = 0;
        while (true)
        {
            var page = await CacheStore.ReadPeerPageAsync(peer, cursor, scopes, _config.PeerSync.BatchSize,
                _time.GetUtcNow().ToUnixTimeMilliseconds(), bounded.Token).ConfigureAwait(false);
            if (page.Count == 0) break;
            var won = await _store!.MergeAsync(page, bounded.Token).ConfigureAwait(false);
            Refresh(won);
            taken += won.Count;
            cursor = (page[^1].UpdatedAtMs, page[^1].Key);
            _peerCursors[file] = cursor;
            if (page.Count < _config.PeerSync.BatchSize) break;
        }
        return taken;
    }

    /// <summary>Entries a peer sync stored replace older copies held in memory.</summary>
    private void Refresh(List<CacheEntry> won)
    {
        lock (_gate)
        {
            foreach (var entry in won)
                if (_memory.TryGetValue(entry.Key, out var node) && entry.Supersedes(node.Value)) node.Value = entry;
        }
    }

    private void Put(string key, byte[] value, TimeSpan? ttl, CacheScope scope)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (ttl is { } t && t <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(ttl), t, $"cache key '{key}': ttl must be positive (or null for no expiry)");
        if (!Enabled) return;
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_gate)
        {
            var created = _memory.TryGetValue(key, out var existing) ? existing.Value.CreatedAtMs : now;
            var entry = new CacheEntry(key, value, scope, created, now, ttl is { } life ? now + (long)life.TotalMilliseconds : null, _owner.WorkerId);
            Remember(entry);
            _dirty[key] = entry;
        }
    }

    private async ValueTask<CacheEntry?> GetEntryAsync(string key, CancellationToken cancellationToken)
    {
        if (_store is null) return null;
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_gate)
        {
            if (Touch(key, now) is { } hit) return hit;
            // Evicted before it was flushed: the pending write is the newest value (or a delete).
            if (_dirty.TryGetValue(key, out var pending))
            {
                if (pending is null || pending.ExpiredAt(now)) return null;
                Remember(pending);
                return pending;
            }
        }
        if (await _store.ReadAsync(key, now, cancellationToken).ConfigureAwait(false) is not { } stored) return null;
        lock (_gate)
        {
            // A set or delete that raced with the read wins over the older stored value.
            if (_memory.TryGetValue(key, out var raced)) return raced.Value.ExpiredAt(now) ? null : raced.Value;
            if (_dirty.ContainsKey(key)) return null;
            Remember(stored);
        }
        return stored;
    }

    /// <summary>The unexpired entry in memory, moved to the most recently used end; an expired one is dropped. Caller holds the gate.</summary>
    private CacheEntry? Touch(string key, long nowMs)
    {
        if (!_memory.TryGetValue(key, out var node)) return null;
        _recency.Remove(node);
        if (node.Value.ExpiredAt(nowMs))
        {
            _memory.Remove(key);
            return null;
        }
        _recency.AddFirst(node);
        return node.Value;
    }

    /// <summary>Puts an entry in memory as the most recently used, evicting the least recently used past the bound. Caller holds the gate.</summary>
    private void Remember(CacheEntry entry)
    {
        if (_memory.TryGetValue(entry.Key, out var node))
        {
            node.Value = entry;
            _recency.Remove(node);
            _recency.AddFirst(node);
            return;
        }
        _memory[entry.Key] = _recency.AddFirst(entry);
        if (_config.MaxMemoryEntries is not { } bound) return;
        while (_memory.Count > bound)
        {
            // Its pending write (if any) stays in _dirty: eviction never loses a write.
            var oldest = _recency.Last!;
            _recency.RemoveLast();
            _memory.Remove(oldest.Value.Key);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache peer sync never reads {Refused}: peers run as this worker's user, and a file of another user or a link could feed this worker's cache")]
    private partial void LogPeerRefused(string refused);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache peer sync skips {File}: it is not (or not yet) a cache database")]
    private partial void LogNotACacheFile(string file);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache peer sync skipped {Peer} this cycle")]
    private partial void LogPeerFailed(Exception error, string peer);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The cache file {File} is in use by another running process (a second worker with this WORKER_ID sharing cache.db_dir?): both write to it, and its in-use lock stays theirs")]
    private partial void LogInUseElsewhere(string file);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache cleanup deleted {File}: not written for more than {Hours} h (cache.stale_file_hours), its worker is gone")]
    private partial void LogStaleDeleted(string file, double hours);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Cache cleanup removed {Count} expired entries")]
    private partial void LogExpired(int count);
}
