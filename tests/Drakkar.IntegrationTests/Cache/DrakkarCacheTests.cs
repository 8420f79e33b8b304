using Drakkar.IntegrationTests.Sinks;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Cache;

/// <summary>The handler cache on real SQLite files: TTL, persistence across a restart, the LRU bound, deletes, peers.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DrakkarCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-cache-").FullName;
    private readonly ManualClock _clock = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private DrakkarConfig Config(int? maxMemoryEntries = 10_000, string group = "cache-group") => new()
    {
        Kafka = { ConsumerGroup = group },
        Cache = { Enabled = true, DbDir = _dir, MaxMemoryEntries = maxMemoryEntries },
    };

    private Task<DrakkarCache> Open(string workerId = "w1", int? maxMemoryEntries = 10_000, string group = "cache-group") =>
        DrakkarCache.OpenAsync(Config(maxMemoryEntries, group), workerId, _clock);

    [Fact]
    public async Task A_cache_file_that_is_not_a_database_is_a_startup_error_and_leaves_the_in_use_lock_free()
    {
        var file = Path.Combine(_dir, "w1-cache.db");
        await File.WriteAllBytesAsync(file, [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 7919 % 251))]);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var error = await Assert.ThrowsAsync<Drakkar.Hosting.WorkerStartupException>(() => Open());
        Assert.Contains("file is not a database", error.Message, StringComparison.Ordinal);

        // Fixed by hand (the file removed), the worker starts again in this process: its lock was let go, so it is not
        // taken for a second worker with this id (the lock stayed held by the failed open before).
        File.Delete(file);
        var logs = new LogCapture();
        await using var cache = await DrakkarCache.OpenAsync(Config(), "w1", _clock, logs.CreateLogger("cache"));
        Assert.Empty(logs.Containing("is in use by another running process"));
    }

    [Fact]
    public async Task An_entry_expires_after_its_ttl_in_memory_and_in_the_database()
    {
        await using (var cache = await Open())
        {
            cache.Set("short", "lives 10 s", ttl: TimeSpan.FromSeconds(10));
            cache.Set("forever", "no ttl");
            await cache.FlushAsync();
            _clock.Advance(TimeSpan.FromSeconds(9));
            Assert.Equal("lives 10 s", await cache.GetStringAsync("short"));

            _clock.Advance(TimeSpan.FromSeconds(2));
            Assert.Null(cache.Peek("short"));
            Assert.Null(await cache.GetStringAsync("short"));
            Assert.Equal("no ttl", await cache.GetStringAsync("forever"));
        }
        // A fresh process finds nothing expired in the file either.
        await using var restarted = await Open();
        Assert.Null(await restarted.GetStringAsync("short"));
        Assert.Equal("no ttl", await restarted.GetStringAsync("forever"));
    }

    [Fact]
    public async Task Values_survive_a_restart_typed_text_and_bytes_including_writes_never_flushed_by_the_timer()
    {
        var reading = new Reading("r-1", 3, 0.5, null, ["a", "b"]);
        await using (var cache = await Open())
        {
            cache.Set("typed", reading);
            cache.Set("text", "héllo");
            cache.Set("raw", [0, 1, 255]);
        }

        await using var restarted = await Open();
        Assert.False(restarted.Contains("typed"));
        var back = await restarted.GetAsync<Reading>("typed");
        Assert.NotNull(back);
        Assert.Equal(PayloadData.Of(reading).ToJson(), PayloadData.Of(back).ToJson());
        Assert.Equal("héllo", await restarted.GetStringAsync("text"));
        Assert.Equal([0, 1, 255], await restarted.GetBytesAsync("raw"));
        Assert.True(restarted.Contains("typed"));
    }

    [Fact]
    public async Task Memory_holds_at_most_max_memory_entries_and_evicted_keys_are_still_read_back()
    {
        await using var cache = await Open(maxMemoryEntries: 2);
        cache.Set("a", "A");
        cache.Set("b", "B");
        Assert.NotNull(cache.Peek("a"));
        cache.Set("c", "C");

        // "b" was the least recently used once "a" was peeked.
        Assert.True(cache.Contains("a"));
        Assert.False(cache.Contains("b"));
        Assert.True(cache.Contains("c"));
        Assert.Equal("B", await cache.GetStringAsync("b"));
        Assert.False(cache.Contains("a"));

        await cache.FlushAsync();
        Assert.Equal("A", await cache.GetStringAsync("a"));
        Assert.Equal(2, new[] { "a", "b", "c" }.Count(cache.Contains));
    }

    [Fact]
    public async Task A_delete_removes_the_key_now_and_from_the_file_at_the_next_flush()
    {
        await using (var cache = await Open())
        {
            cache.Set("gone", "soon");
            await cache.FlushAsync();
            Assert.True(cache.Delete("gone"));
            Assert.Null(await cache.GetStringAsync("gone"));
        }
        await using var restarted = await Open();
        Assert.Null(await restarted.GetStringAsync("gone"));
    }

    [Fact]
    public async Task Peers_pull_cluster_entries_of_their_own_group_global_ones_from_anyone_and_never_local_ones()
    {
        await using var writer = await Open("writer");
        await using var sameGroup = await Open("same-group");
        await using var otherGroup = await Open("other-group", group: "another-group");
        writer.Set("local", "mine", scope: CacheScope.Local);
        writer.Set("cluster", "ours", scope: CacheScope.Cluster);
        writer.Set("global", "everyone's", scope: CacheScope.Global);
        await writer.FlushAsync();

        Assert.Equal(2, await sameGroup.SyncWithPeersAsync());
        Assert.Equal(1, await otherGroup.SyncWithPeersAsync());

        Assert.Null(await sameGroup.GetStringAsync("local"));
        Assert.Equal("ours", await sameGroup.GetStringAsync("cluster"));
        Assert.Equal("everyone's", await sameGroup.GetStringAsync("global"));
        Assert.Null(await otherGroup.GetStringAsync("cluster"));
        Assert.Equal("everyone's", await otherGroup.GetStringAsync("global"));
    }

    [Fact]
    public async Task The_newer_write_wins_a_sync_and_an_older_one_never_overwrites_it()
    {
        await using var first = await Open("first");
        await using var second = await Open("second");
        first.Set("k", "old", scope: CacheScope.Cluster);
        await first.FlushAsync();
        _clock.Advance(TimeSpan.FromSeconds(1));
        second.Set("k", "new", scope: CacheScope.Cluster);
        await second.FlushAsync();

        Assert.Equal(0, await second.SyncWithPeersAsync());
        Assert.Equal(1, await first.SyncWithPeersAsync());

        Assert.Equal("new", await first.GetStringAsync("k"));
        Assert.Equal("new", await second.GetStringAsync("k"));
    }

    [Fact]
    public async Task A_cache_directory_that_cannot_be_used_stops_the_open_naming_the_key_and_the_path()
    {
        var notADirectory = Path.Combine(_dir, "plain-file");
        await File.WriteAllTextAsync(notADirectory, "");

        var error = await Assert.ThrowsAsync<Drakkar.Hosting.WorkerStartupException>(() =>
            DrakkarCache.OpenAsync(new DrakkarConfig { Cache = { Enabled = true, DbDir = notADirectory } }, "w1"));

        Assert.Contains($"(cache.db_dir: '{notADirectory}')", error.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(notADirectory, "w1-cache.db"), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_peer_file_that_is_a_link_or_another_users_is_never_read()
    {
        await using var worker = await Open("worker");
        await using (var intruder = await Open("intruder"))
        {
            intruder.Set("price", "poisoned", scope: CacheScope.Global);
        }
        var intruderFile = Path.Combine(_dir, "intruder-cache.db");
        // Another name for the same file, as a link planted in the directory: never read through.
        var elsewhere = Directory.CreateTempSubdirectory("drakkar-cache-elsewhere-").FullName;
        try
        {
            File.Move(intruderFile, Path.Combine(elsewhere, "intruder-cache.db"));
            File.CreateSymbolicLink(Path.Combine(_dir, "linked-cache.db"), Path.Combine(elsewhere, "intruder-cache.db"));

            Assert.Equal(0, await worker.SyncWithPeersAsync());
            Assert.Null(await worker.GetStringAsync("price"));

            // The same file back in the directory as a regular file of this user is a peer like any other.
            File.Delete(Path.Combine(_dir, "linked-cache.db"));
            File.Move(Path.Combine(elsewhere, "intruder-cache.db"), intruderFile);
            if (Environment.UserName == "root")
            {
                // Owned by another user, it is refused (only root can hand a file to another user; CI runs as root).
                foreach (var file in Directory.GetFiles(_dir, "intruder-cache.db*")) ChangeOwner(file, 4242);
                Assert.Equal(0, await worker.SyncWithPeersAsync());
                Assert.Null(await worker.GetStringAsync("price"));
                foreach (var file in Directory.GetFiles(_dir, "intruder-cache.db*")) ChangeOwner(file, 0);
            }
            Assert.Equal(1, await worker.SyncWithPeersAsync());
            Assert.Equal("poisoned", await worker.GetStringAsync("price"));
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public async Task A_link_planted_at_the_workers_cache_file_stops_the_open_and_is_not_written_through()
    {
        var victim = Path.Combine(_dir, "victim.txt");
        await File.WriteAllTextAsync(victim, "precious");
        File.CreateSymbolicLink(Path.Combine(_dir, "w1-cache.db"), victim);

        var error = await Assert.ThrowsAsync<Drakkar.Hosting.WorkerStartupException>(() => Open("w1"));

        Assert.Contains($"{Path.Combine(_dir, "w1-cache.db")} is a symbolic link", error.Message, StringComparison.Ordinal);
        Assert.Contains("(cache.db_dir: ", error.Message, StringComparison.Ordinal);
        Assert.Equal("precious", await File.ReadAllTextAsync(victim));
    }

    [Fact]
    public async Task A_new_cache_file_is_readable_by_its_owner_only()
    {
        await using (var cache = await Open("w1"))
        {
            cache.Set("k", "v");
            await cache.FlushAsync();
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir, "w1-cache.db")));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir, "w1-cache.db-wal")));
        }
        await using var again = await Open("w1");
        Assert.Equal("v", await again.GetStringAsync("k"));
    }

    [Fact]
    public async Task Cleanup_deletes_the_files_of_workers_gone_for_stale_file_hours_after_their_entries_were_pulled()
    {
        await using var live = await Open("live");
        foreach (var (gone, hoursAgo) in new[] { ("gone-long", 25), ("gone-recently", 23) })
        {
            await using (var cache = await Open(gone))
                cache.Set($"{gone}-key", $"from {gone}", scope: CacheScope.Cluster);
            SetLastWritten(gone, TimeSpan.FromHours(hoursAgo));
        }
        // Other programs' files, one named like a cache file: never deleted, however old.
        foreach (var name in new[] { "notes.db", "myapp-cache.db" })
        {
            var unrelated = Path.Combine(_dir, name);
            await File.WriteAllTextAsync(unrelated, "not a cache file");
            File.SetLastWriteTimeUtc(unrelated, _clock.GetUtcNow().UtcDateTime.AddDays(-30));
        }
        // Peer sync skips the look-alike (it is not a cache database) and takes the two peers' entries.
        Assert.Equal(2, await live.SyncWithPeersAsync());
        Assert.Equal("not a cache file", await File.ReadAllTextAsync(Path.Combine(_dir, "myapp-cache.db")));
        // A live worker with nothing to flush for longer than that is still alive: its cleanup marks its file.
        SetLastWritten("live", TimeSpan.FromHours(30));

        await live.CleanupAsync();

        Assert.Equal(["gone-recently-cache.db", "gone-recently-cache.db-shm", "gone-recently-cache.db-wal", "gone-recently-cache.db.lock",
            "live-cache.db", "live-cache.db-shm", "live-cache.db-wal", "live-cache.db.lock", "myapp-cache.db", "notes.db"],
            Directory.GetFiles(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.True(File.GetLastWriteTimeUtc(Path.Combine(_dir, "live-cache.db")) >= _clock.GetUtcNow().UtcDateTime.AddMinutes(-1));
        Assert.Equal("from gone-long", await live.GetStringAsync("gone-long-key"));
        Assert.Equal(0, await live.SyncWithPeersAsync());
    }

    [Fact]
    public async Task A_running_workers_file_is_never_deleted_by_a_peers_cleanup_however_old_its_time()
    {
        // A worker whose cleanup runs less often than a peer's stale_file_hours (or a stopped process): its file's time
        // is old, but it is still using it. Deleted, its entries would reach no peer and be gone at its exit.
        var running = await Open("running");
        running.Set("k", "from running", scope: CacheScope.Cluster);
        await running.FlushAsync();
        SetLastWritten("running", TimeSpan.FromHours(30));
        await using var peer = await Open("peer");

        await peer.CleanupAsync();

        Assert.True(File.Exists(Path.Combine(_dir, "running-cache.db")), "the running worker's file was deleted");
        Assert.Equal(1, await peer.SyncWithPeersAsync());
        // Once it is gone (its lock is released with the process, kill -9 included), the next cleanup deletes its files.
        await running.DisposeAsync();
        SetLastWritten("running", TimeSpan.FromHours(30));
        await peer.CleanupAsync();
        Assert.Empty(Directory.GetFiles(_dir, "running-cache.db*"));
        Assert.Equal("from running", await peer.GetStringAsync("k"));
    }

    [Fact]
    public async Task A_worker_back_after_a_long_stop_marks_its_file_alive_at_open_and_null_keeps_every_file()
    {
        await using (var cache = await Open("returning"))
            cache.Set("k", "kept", scope: CacheScope.Local);
        SetLastWritten("returning", TimeSpan.FromDays(3));
        await using (var keeper = await DrakkarCache.OpenAsync(new DrakkarConfig { Cache = { Enabled = true, DbDir = _dir, StaleFileHours = null } }, "keeper", _clock))
            await keeper.CleanupAsync();
        Assert.True(File.Exists(Path.Combine(_dir, "returning-cache.db")));

        await using var returning = await Open("returning");
        await using var peer = await Open("peer");
        await peer.CleanupAsync();

        Assert.Equal("kept", await returning.GetStringAsync("k"));
        Assert.True(File.Exists(Path.Combine(_dir, "returning-cache.db")));
        Assert.True(File.Exists(Path.Combine(_dir, "keeper-cache.db")));
    }

    /// <summary>Sets a worker's cache file and its companions back to <paramref name="ago"/> before the test clock's now.</summary>
    private void SetLastWritten(string workerId, TimeSpan ago)
    {
        foreach (var file in Directory.GetFiles(_dir, workerId + "-cache.db*"))
            File.SetLastWriteTimeUtc(file, _clock.GetUtcNow().UtcDateTime - ago);
    }

    private static void ChangeOwner(string path, int uid)
    {
        using var chown = System.Diagnostics.Process.Start("chown", [uid.ToString(System.Globalization.CultureInfo.InvariantCulture), path])!;
        chown.WaitForExit();
        Assert.Equal(0, chown.ExitCode);
    }

    [Fact]
    public async Task A_disabled_cache_misses_every_read_and_drops_every_write()
    {
        var cache = await DrakkarCache.OpenAsync(new DrakkarConfig { Cache = { DbDir = _dir } }, "w1");

        cache.Set("k", "v");
        Assert.False(cache.Enabled);
        Assert.Null(await cache.GetStringAsync("k"));
        Assert.Empty(Directory.GetFiles(_dir));
    }
}
