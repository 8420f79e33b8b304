using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Drakkar.Sinks.Dlq;
using Drakkar.Sinks.Redis;
using Microsoft.Extensions.Logging.Abstractions;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

[Collection(SinksCollection.Name)]
public sealed class RedisSinkTests(RedisServer redis, KafkaBroker kafka)
{
    private static SinkManager Manager(string url, IDeadLetterQueue dlq, SinkManagerOptions? options = null, DrakkarMetrics? metrics = null, string prefix = "drk:")
    {
        var masker = new SinkSecretMasker();
        return Manager(new RedisSinkConfig { Url = url, KeyPrefix = prefix }, dlq, options, metrics);
    }

    private static SinkManager Manager(RedisSinkConfig config, IDeadLetterQueue dlq, SinkManagerOptions? options = null, DrakkarMetrics? metrics = null)
    {
        var masker = new SinkSecretMasker();
        return new SinkManager([new RedisSink("cache", config, masker, NullLogger.Instance)], dlq,
            options ?? new SinkManagerOptions(), metrics ?? new DrakkarMetrics(), NullLoggerFactory.Instance, masker);
    }

    private static CollectResult Batch(int from, int count, TimeSpan? ttl = null)
    {
        var result = new CollectResult();
        for (var i = from; i < from + count; i++) result.Redis.Add(RedisPayload.Of($"reading:{i}", Reading.Sample(i), ttl));
        return result;
    }

    [Fact]
    public async Task A_server_that_is_not_there_stops_the_start_naming_the_sink_without_the_clients_abortConnect_advice()
    {
        // A port that was free a moment ago: nothing listens there.
        var port = FreePort.Next();
        var manager = Manager($"redis://127.0.0.1:{port}/0", new RecordingDlq());

        var error = await Assert.ThrowsAsync<SinkStartupException>(() => manager.StartAsync(default));

        Assert.Contains("sinks.redis.cache", error.Message, StringComparison.Ordinal);
        Assert.Contains($"cannot connect to Redis at 127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        // Following the client's advice (abortConnect=false in the URL) only leads to a configuration error.
        Assert.DoesNotContain("abortConnect", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Set_writes_prefixed_keys_with_the_json_value_and_the_ttl()
    {
        var manager = Manager(redis.Url, new RecordingDlq());
        await manager.StartAsync(default);
        var result = Batch(100, 3, TimeSpan.FromHours(1));
        result.Redis.Add(RedisPayload.Of("reading:forever", Reading.Sample(7)));

        await manager.DeliverAsync(result, Origin(), default);

        using var client = new Resp(redis.Port);
        Assert.Equal(PayloadData.Of(Reading.Sample(101)).ToJson(), client.Call("GET", "drk:reading:101"));
        var ttl = int.Parse(client.Call("TTL", "drk:reading:101")!);
        Assert.InRange(ttl, 3590, 3600);
        Assert.Equal("-1", client.Call("TTL", "drk:reading:forever"));
        Assert.Equal(4, manager.StatsOf("redis", "cache").Delivered);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_payload_that_cannot_become_json_dead_letters_only_its_group_and_the_connection_stays_in_step()
    {
        var dlq = new RecordingDlq();
        var masker = new SinkSecretMasker();
        // Three hook calls queued together, so they share one batch (and one pipeline of SETs).
        var manager = new SinkManager([new RedisSink("cache", new RedisSinkConfig { Url = redis.Url, KeyPrefix = "nan:" }, masker, NullLogger.Instance)], dlq,
            new SinkManagerOptions { Batching = (_, _) => new SinkBatching(100, TimeSpan.FromMilliseconds(500)) }, new DrakkarMetrics(),
            NullLoggerFactory.Instance, masker);
        await manager.StartAsync(default);

        var good1 = manager.DeliverAsync(Batch(1, 2), Origin("orders", 0, 10), default).AsTask();
        var poison = manager.DeliverAsync(new CollectResult { Redis = { RedisPayload.Of("gauge", new Gauge("g", double.NaN)) } }, Origin("orders", 0, 11), default).AsTask();
        var good2 = manager.DeliverAsync(Batch(3, 2), Origin("orders", 0, 12), default).AsTask();
        await Task.WhenAll(good1, poison, good2).WaitAsync(TimeSpan.FromSeconds(30));

        var letter = Assert.Single(dlq.Letters);
        Assert.Equal([11L], letter.Messages.Select(m => m.Offset));
        Assert.Contains("JSON", letter.Error);
        using var client = new Resp(redis.Port);
        foreach (var i in new[] { 1, 2, 3, 4 }) Assert.Equal(PayloadData.Of(Reading.Sample(i)).ToJson(), client.Call("GET", $"nan:reading:{i}"));
        Assert.Null(client.Call("GET", "nan:gauge"));

        // The next batch is answered with its own replies: nothing of the refused one was left in the connection.
        await manager.DeliverAsync(Batch(5, 3), Origin("orders", 0, 13), default).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Single(dlq.Letters);
        Assert.Equal(7, manager.StatsOf("redis", "cache").Delivered);
        Assert.Equal(PayloadData.Of(Reading.Sample(7)).ToJson(), client.Call("GET", "nan:reading:7"));
        await manager.CloseAsync();
    }

    [Fact]
    public async Task An_empty_or_blank_key_is_refused_by_the_sink_with_the_payload_kept_for_the_DLQ()
    {
        var dlq = new RecordingDlq();
        var masker = new SinkSecretMasker();
        var manager = new SinkManager([new RedisSink("cache", new RedisSinkConfig { Url = redis.Url, KeyPrefix = "blank:" }, masker, NullLogger.Instance)], dlq,
            new SinkManagerOptions { Batching = (_, _) => new SinkBatching(100, TimeSpan.FromMilliseconds(500)) }, new DrakkarMetrics(),
            NullLoggerFactory.Instance, masker);
        await manager.StartAsync(default);

        // Keys a hook builds from its data; the factory no longer throws inside the hook (which lost the task's other results).
        var good = manager.DeliverAsync(Batch(1, 1), Origin("orders", 0, 20), default).AsTask();
        var empty = manager.DeliverAsync(new CollectResult { Redis = { RedisPayload.Of("", Reading.Sample(2)) } }, Origin("orders", 0, 21), default).AsTask();
        var blank = manager.DeliverAsync(new CollectResult { Redis = { RedisPayload.Of("  ", Reading.Sample(3)) } }, Origin("orders", 0, 22), default).AsTask();
        await Task.WhenAll(good, empty, blank).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal([21L, 22L], dlq.Letters.Select(l => l.Messages.Single().Offset).Order());
        Assert.Contains(dlq.Letters, l => l.Error.Contains("(Reading) has an empty Redis key", StringComparison.Ordinal));
        Assert.Contains(dlq.Letters, l => l.Error.Contains("(Reading) has a blank Redis key", StringComparison.Ordinal));
        Assert.All(dlq.Letters, l => Assert.Single(l.Payloads));
        using var client = new Resp(redis.Port);
        Assert.Equal(PayloadData.Of(Reading.Sample(1)).ToJson(), client.Call("GET", "blank:reading:1"));
        Assert.Null(client.Call("GET", "blank:"));
        Assert.Null(client.Call("GET", "blank:  "));
        await manager.CloseAsync();
    }

    [Fact]
    public async Task The_database_comes_from_the_url()
    {
        var manager = Manager($"redis://127.0.0.1:{redis.Port}/3", new RecordingDlq(), prefix: "db3:");
        await manager.StartAsync(default);
        await manager.DeliverAsync(Batch(1, 1), Origin(), default);
        using var client = new Resp(redis.Port);
        Assert.Null(client.Call("GET", "db3:reading:1"));
        Assert.Equal("OK", client.Call("SELECT", "3"));
        Assert.NotNull(client.Call("GET", "db3:reading:1"));
        await manager.CloseAsync();
    }

    [Fact]
    public async Task Credentials_from_the_url_authenticate_and_a_wrong_password_fails_startup_masked()
    {
        using var admin = new Resp(redis.Port);
        admin.Call("ACL", "SETUSER", "writer", "on", ">writer-pass-1", "~*", "+@all");
        admin.Call("CONFIG", "SET", "requirepass", "default-pass-1");
        try
        {
            var asDefault = Manager($"redis://:default-pass-1@127.0.0.1:{redis.Port}/0", new RecordingDlq(), prefix: "auth-default:");
            await asDefault.StartAsync(default);
            await asDefault.DeliverAsync(Batch(1, 1), Origin(), default);
            await asDefault.CloseAsync();

            var asUser = Manager($"redis://writer:writer-pass-1@127.0.0.1:{redis.Port}/0", new RecordingDlq(), prefix: "auth-user:");
            await asUser.StartAsync(default);
            await asUser.DeliverAsync(Batch(1, 1), Origin(), default);
            await asUser.CloseAsync();

            var wrong = Manager($"redis://writer:not-the-pass-9@127.0.0.1:{redis.Port}/0", new RecordingDlq());
            var error = await Assert.ThrowsAsync<SinkStartupException>(() => wrong.StartAsync(default));
            Assert.Contains("sinks.redis.cache", error.Message);
            Assert.DoesNotContain("not-the-pass-9", error.Message);

            using var check = new Resp(redis.Port);
            check.Call("AUTH", "default-pass-1");
            Assert.NotNull(check.Call("GET", "auth-default:reading:1"));
            Assert.NotNull(check.Call("GET", "auth-user:reading:1"));
        }
        finally
        {
            using var reset = new Resp(redis.Port);
            reset.Call("AUTH", "default-pass-1");
            reset.Call("CONFIG", "SET", "requirepass", "");
            reset.Call("ACL", "DELUSER", "writer");
        }
    }

    [Fact]
    public async Task Runs_without_a_ttl_go_as_MSETs_in_payload_order_and_every_key_holds_its_value_and_ttl()
    {
        using var own = new RedisServer();
        var sink = new RedisSink("cache", new RedisSinkConfig { Url = own.Url, KeyPrefix = "m:" }, new SinkSecretMasker(), NullLogger.Instance);
        await sink.ConnectAsync(default);
        var hour = TimeSpan.FromHours(1);
        // 1,100 keys without a ttl (two MSETs: 1,024 + 76), two with a ttl, ten more without, and then a key of the
        // first run again with a ttl: it must end with that later value and its ttl.
        var payloads = new List<SinkPayload>();
        payloads.AddRange(Enumerable.Range(0, 1100).Select(i => RedisPayload.Of($"a{i}", Reading.Sample(i))));
        payloads.Add(RedisPayload.Of("t0", Reading.Sample(2000), hour));
        payloads.Add(RedisPayload.Of("t1", Reading.Sample(2001), hour));
        payloads.AddRange(Enumerable.Range(0, 10).Select(i => RedisPayload.Of($"b{i}", Reading.Sample(3000 + i))));
        payloads.Add(RedisPayload.Of("a5", Reading.Sample(9999), hour));
        var batch = new SinkBatch("source", 0, payloads);

        await sink.DeliverAsync(batch, default);
        await sink.CloseAsync(default);

        Assert.False(batch.HasFailures);
        using var client = new Resp(own.Port);
        foreach (var i in Enumerable.Range(0, 1100).Where(i => i != 5))
            Assert.Equal(PayloadData.Of(Reading.Sample(i)).ToJson(), client.Call("GET", $"m:a{i}"));
        foreach (var i in Enumerable.Range(0, 10)) Assert.Equal(PayloadData.Of(Reading.Sample(3000 + i)).ToJson(), client.Call("GET", $"m:b{i}"));
        Assert.Equal(PayloadData.Of(Reading.Sample(2001)).ToJson(), client.Call("GET", "m:t1"));
        Assert.Equal(PayloadData.Of(Reading.Sample(9999)).ToJson(), client.Call("GET", "m:a5"));
        foreach (var key in new[] { "m:t0", "m:t1", "m:a5" }) Assert.InRange(int.Parse(client.Call("TTL", key)!), 3590, 3600);
        Assert.Equal("-1", client.Call("TTL", "m:a0"));
        Assert.Equal("-1", client.Call("TTL", "m:b9"));
        Assert.Equal("1112", client.Call("DBSIZE"));
        Assert.Equal((3, 0), CommandStats(client, "mset"));
        Assert.Equal((3, 0), CommandStats(client, "setex")); // the client spells SET … EX as SETEX
    }

    /// <summary>
    /// A Redis at its maxmemory with nothing to evict answers every write with OOM, whatever the payload; that was
    /// treated as bad data, and a newcomer's worker dead-lettered and committed its whole stream while Redis was full.
    /// It is an outage now: held under on_outage: pause, and written once the server has room.
    /// </summary>
    [Fact]
    public async Task A_server_out_of_memory_holds_the_payloads_as_an_outage_and_writes_them_once_it_has_room()
    {
        using var server = new RedisServer();
        using var admin = new Resp(server.Port);
        var dlq = new RecordingDlq();
        var manager = Manager(server.Url, dlq, new SinkManagerOptions { Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause } });
        await manager.StartAsync(default);
        admin.Call("CONFIG", "SET", "maxmemory-policy", "noeviction");
        admin.Call("CONFIG", "SET", "maxmemory", "1");

        var held = manager.DeliverAsync(Batch(1, 3), Origin(), default).AsTask();
        await Eventually.True(() => manager.StatsOf("redis", "cache").Errors >= 1, TimeSpan.FromSeconds(30), "the full server refused a write");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(held.IsCompleted, "the payloads were settled while the server had no room");
        Assert.Empty(dlq.Letters);

        admin.Call("CONFIG", "SET", "maxmemory", "0");
        await held.WaitAsync(TimeSpan.FromSeconds(30));
        await manager.CloseAsync();

        Assert.Empty(dlq.Letters);
        Assert.Equal(PayloadData.Of(Reading.Sample(3)).ToJson(), admin.Call("GET", "drk:reading:3"));
    }

    [Fact]
    public Task A_SET_the_server_refuses_dead_letters_only_the_group_it_came_from() =>
        WithLimitedUserAsync("limited", "allowed:*", ["+set"], async (manager, dlq, admin) =>
        {
            var msetBefore = CommandStats(admin, "mset");
            // Three hook calls in one batch; the middle one writes outside the user's keys.
            var allowed1 = manager.DeliverAsync(Keys("allowed:1", "allowed:2"), Origin("orders", 0, 20), default).AsTask();
            var refused = manager.DeliverAsync(Keys("allowed:3", "secret:1"), Origin("orders", 0, 21), default).AsTask();
            var allowed2 = manager.DeliverAsync(Keys("allowed:4"), Origin("orders", 0, 22), default).AsTask();
            await Task.WhenAll(allowed1, refused, allowed2).WaitAsync(TimeSpan.FromSeconds(30));

            var letter = Assert.Single(dlq.Letters);
            Assert.Equal([21L], letter.Messages.Select(m => m.Offset));
            Assert.Contains("NOPERM", letter.Error);
            Assert.Contains("secret:1", letter.Error);
            Assert.DoesNotContain("limited-pass-1", letter.Error);
            var stats = manager.StatsOf("redis", "cache");
            // Refused is not transient: no fast retry, no second attempt.
            Assert.Equal((3, 2, 0), (stats.Delivered, stats.DeadLettered, stats.Retries));
            foreach (var key in new[] { "allowed:1", "allowed:2", "allowed:4" }) Assert.NotNull(admin.Call("GET", key));
            Assert.Null(admin.Call("GET", "secret:1"));

            // The user may not run MSET: refused once, the sink then writes one SET per payload without asking again.
            await manager.DeliverAsync(Keys("allowed:5", "allowed:6"), Origin("orders", 0, 23), default).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.NotNull(admin.Call("GET", "allowed:6"));
            Assert.Equal((msetBefore.Calls, msetBefore.Rejected + 1), CommandStats(admin, "mset"));
        });

    [Fact]
    public Task An_MSET_refused_for_one_key_is_written_again_key_by_key_and_later_batches_still_use_MSET() =>
        WithLimitedUserAsync("keyed", "open:*", ["+set", "+mset"], async (manager, dlq, admin) =>
        {
            var msetBefore = CommandStats(admin, "mset");
            // One batch, one MSET of five keys, one of them outside the user's keys: the server refuses the whole MSET.
            var open1 = manager.DeliverAsync(Keys("open:1", "open:2"), Origin("orders", 0, 40), default).AsTask();
            var refused = manager.DeliverAsync(Keys("open:3", "shut:1"), Origin("orders", 0, 41), default).AsTask();
            var open2 = manager.DeliverAsync(Keys("open:4"), Origin("orders", 0, 42), default).AsTask();
            await Task.WhenAll(open1, refused, open2).WaitAsync(TimeSpan.FromSeconds(30));

            var letter = Assert.Single(dlq.Letters);
            Assert.Equal([41L], letter.Messages.Select(m => m.Offset));
            Assert.Contains("shut:1", letter.Error);
            foreach (var key in new[] { "open:1", "open:2", "open:3", "open:4" }) Assert.NotNull(admin.Call("GET", key));
            Assert.Null(admin.Call("GET", "shut:1"));
            Assert.Equal((msetBefore.Calls, msetBefore.Rejected + 1), CommandStats(admin, "mset"));

            await manager.DeliverAsync(Keys("open:5", "open:6"), Origin("orders", 0, 43), default).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(PayloadData.Of(Reading.Sample(1)).ToJson(), admin.Call("GET", "open:6"));
            Assert.Equal((msetBefore.Calls + 1, msetBefore.Rejected + 1), CommandStats(admin, "mset"));
            var stats = manager.StatsOf("redis", "cache");
            Assert.Equal((5, 2, 0), (stats.Delivered, stats.DeadLettered, stats.Retries));
        });

    [Fact]
    public Task A_key_set_again_after_a_refused_MSET_keeps_its_later_value_and_ttl() =>
        WithLimitedUserAsync("order", "ord:*", ["+set", "+setex", "+mset"], async (manager, dlq, admin) =>
        {
            // One batch: MSET ord:k, ord:x, bad:1 (refused for bad:1), then SET ord:k with a ttl. Writing the refused
            // MSET's keys again must not put the earlier value of ord:k back over the later one.
            var first = manager.DeliverAsync(new CollectResult { Redis = { RedisPayload.Of("ord:k", Reading.Sample(1)), RedisPayload.Of("ord:x", Reading.Sample(2)) } }, Origin("orders", 0, 50), default).AsTask();
            var refused = manager.DeliverAsync(Keys("bad:1"), Origin("orders", 0, 51), default).AsTask();
            var later = manager.DeliverAsync(new CollectResult { Redis = { RedisPayload.Of("ord:k", Reading.Sample(3), TimeSpan.FromHours(1)) } }, Origin("orders", 0, 52), default).AsTask();
            await Task.WhenAll(first, refused, later).WaitAsync(TimeSpan.FromSeconds(30));

            Assert.Equal([51L], Assert.Single(dlq.Letters).Messages.Select(m => m.Offset));
            Assert.Equal(PayloadData.Of(Reading.Sample(3)).ToJson(), admin.Call("GET", "ord:k"));
            Assert.InRange(int.Parse(admin.Call("TTL", "ord:k")!), 3590, 3600);
            Assert.Equal(PayloadData.Of(Reading.Sample(2)).ToJson(), admin.Call("GET", "ord:x"));
        });

    [Fact]
    public Task A_refused_SET_is_still_seen_when_the_batch_ends_with_a_payload_that_never_became_a_SET() =>
        // The sink waits on the batch's last SET and then on any still open; here the last payload has no SET at all
        // (its JSON fails), so the refusal earlier in the batch must be waited for on its own.
        WithLimitedUserAsync("tail", "kept:*", ["+set"], async (manager, dlq, admin) =>
        {
            var refused = manager.DeliverAsync(Keys("kept:1", "other:1", "kept:2"), Origin("orders", 0, 30), default).AsTask();
            var poison = manager.DeliverAsync(new CollectResult { Redis = { RedisPayload.Of("kept:nan", new Gauge("g", double.NaN)) } }, Origin("orders", 0, 31), default).AsTask();
            await Task.WhenAll(refused, poison).WaitAsync(TimeSpan.FromSeconds(30));

            Assert.Equal([30L, 31L], dlq.Letters.SelectMany(l => l.Messages).Select(m => m.Offset).Order());
            Assert.Contains(dlq.Letters, l => l.Error.Contains("NOPERM", StringComparison.Ordinal) && l.Error.Contains("other:1", StringComparison.Ordinal));
            Assert.Contains(dlq.Letters, l => l.Error.Contains("JSON", StringComparison.Ordinal));
            Assert.NotNull(admin.Call("GET", "kept:2"));
            Assert.Null(admin.Call("GET", "other:1"));
        });

    /// <summary>
    /// Runs <paramref name="test"/> against a started sink manager connected as an ACL user that may write only keys
    /// matching <paramref name="keys"/> and run nothing but <paramref name="commands"/> and the connection handshake;
    /// hook calls delivered together within 500 ms share one batch. The user's password is <c>{user}-pass-1</c>.
    /// </summary>
    private async Task WithLimitedUserAsync(string user, string keys, string[] commands, Func<SinkManager, RecordingDlq, Resp, Task> test)
    {
        using var admin = new Resp(redis.Port);
        admin.Call(["ACL", "SETUSER", user, "on", $">{user}-pass-1", "resetkeys", $"~{keys}", "-@all", .. commands, "+@connection"]);
        try
        {
            var dlq = new RecordingDlq();
            var manager = Manager(new RedisSinkConfig { Url = $"redis://{user}:{user}-pass-1@127.0.0.1:{redis.Port}/0" }, dlq,
                new SinkManagerOptions { Batching = (_, _) => new SinkBatching(100, TimeSpan.FromMilliseconds(500)) });
            await manager.StartAsync(default);
            await test(manager, dlq, admin);
            await manager.CloseAsync();
        }
        finally
        {
            admin.Call("ACL", "DELUSER", user);
        }
    }

    /// <summary>How often the server ran <paramref name="command"/> and how often it refused it (ACL, arity…), from <c>INFO commandstats</c>.</summary>
    private static (long Calls, long Rejected) CommandStats(Resp client, string command)
    {
        var line = client.Call("INFO", "commandstats")!.Split("\r\n").FirstOrDefault(l => l.StartsWith($"cmdstat_{command}:", StringComparison.Ordinal));
        if (line is null) return (0, 0);
        var fields = line[(line.IndexOf(':') + 1)..].Split(',').Select(f => f.Split('=')).ToDictionary(f => f[0], f => f[1]);
        return (long.Parse(fields["calls"]), long.Parse(fields["rejected_calls"]));
    }

    private static CollectResult Keys(params string[] keys)
    {
        var result = new CollectResult();
        for (var i = 0; i < keys.Length; i++) result.Redis.Add(RedisPayload.Of(keys[i], Reading.Sample(i)));
        return result;
    }

    [Fact]
    public async Task A_unix_socket_url_reaches_the_server_and_its_db_query_selects_the_database()
    {
        var manager = Manager($"unix://{redis.UnixSocket}?db=5", new RecordingDlq(), prefix: "unix:");
        await manager.StartAsync(default);
        await manager.DeliverAsync(Batch(1, 2), Origin(), default);
        await manager.CloseAsync();

        using var client = new Resp(redis.Port);
        Assert.Equal("OK", client.Call("SELECT", "5"));
        Assert.Equal(PayloadData.Of(Reading.Sample(2)).ToJson(), client.Call("GET", "unix:reading:2"));
    }

    [Fact]
    public async Task Rediss_speaks_tls_trusting_the_configured_ca_and_refuses_a_server_it_cannot_verify()
    {
        using var certificates = new TestCertificates();
        using var tls = RedisServer.WithTls(certificates.CertificateFile, certificates.KeyFile, certificates.CaFile);
        var url = $"rediss://127.0.0.1:{tls.Port}/0";

        var manager = Manager(new RedisSinkConfig { Url = url, KeyPrefix = "tls:", TlsCaFile = certificates.CaFile }, new RecordingDlq());
        await manager.StartAsync(default);
        await manager.DeliverAsync(Batch(1, 3), Origin(), default);
        Assert.Equal(3, manager.StatsOf("redis", "cache").Delivered);
        await manager.CloseAsync();

        var untrusted = Manager(new RedisSinkConfig { Url = url }, new RecordingDlq());
        var error = await Assert.ThrowsAsync<SinkStartupException>(() => untrusted.StartAsync(default));
        Assert.Contains("sinks.redis.cache", error.Message);

        // Plain RESP on the TLS port gets no answer; the value is checked over redis-cli's TLS instead.
        var value = ServerProcess.Run("redis-cli", ["--tls", "--cacert", certificates.CaFile, "-h", "127.0.0.1", "-p", tls.Port.ToString(), "GET", "tls:reading:3"]);
        Assert.Equal(PayloadData.Of(Reading.Sample(3)).ToJson(), value.Trim());
    }

    [Fact]
    public async Task A_sentinel_service_name_finds_the_primary_through_the_sentinel()
    {
        using var primary = new RedisServer();
        var sentinelPort = FreePort.Next();
        var directory = Directory.CreateTempSubdirectory("drakkar-sentinel-").FullName;
        var configFile = Path.Combine(directory, "sentinel.conf");
        File.WriteAllText(configFile, $"""
            port {sentinelPort}
            bind 127.0.0.1
            protected-mode no
            sentinel monitor drakkar-primary 127.0.0.1 {primary.Port} 1
            """);
        using var sentinel = ServerProcess.Start("redis-server", [configFile, "--sentinel"]);
        try
        {
            sentinel.WaitForPort(sentinelPort, "Redis sentinel", TimeSpan.FromSeconds(15));
            var manager = Manager(new RedisSinkConfig
            {
                Url = $"redis://127.0.0.1:{sentinelPort}/0", SentinelService = "drakkar-primary", KeyPrefix = "sentinel:",
            }, new RecordingDlq());
            await manager.StartAsync(default);
            await manager.DeliverAsync(Batch(1, 2), Origin(), default);
            await manager.CloseAsync();

            using var client = new Resp(primary.Port);
            Assert.Equal(PayloadData.Of(Reading.Sample(2)).ToJson(), client.Call("GET", "sentinel:reading:2"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task An_idle_sink_turns_not_ready_while_the_server_is_down_and_a_retrying_handler_loses_nothing_across_the_outage()
    {
        var dlq = new RecordingDlq();
        var manager = Manager(redis.Url, dlq, new SinkManagerOptions
        {
            OnDeliveryError = _ => ValueTask.FromResult(DeliveryAction.Retry),
            MaxRetries = 1000,
        }, prefix: "idle:");
        await manager.StartAsync(default);
        await manager.DeliverAsync(Batch(0, 5), Origin(), default);
        Assert.True(manager.IsReady);

        // Nothing is being delivered: readiness drops on the client's connection events alone.
        redis.Stop();
        Task during;
        try
        {
            await Eventually.True(() => !manager.IsReady, TimeSpan.FromSeconds(30), "readiness to drop while idle");
            Assert.Equal(["sink redis:cache is not connected"], manager.NotReadyReasons);

            // Hook calls that complete during the outage are retried until the server is back.
            during = manager.DeliverAsync(Batch(5, 20), Origin("source", 0, 43), default).AsTask();
            await Eventually.True(() => manager.StatsOf("redis", "cache").Retries >= 3, TimeSpan.FromSeconds(30), "a failed attempt during the outage");
            Assert.False(during.IsCompleted);
        }
        finally
        {
            redis.Start();
        }
        await during.WaitAsync(TimeSpan.FromSeconds(60));
        await Eventually.True(() => manager.IsReady, TimeSpan.FromSeconds(30), "readiness to come back");
        await manager.DeliverAsync(Batch(25, 5), Origin("source", 0, 44), default);

        var stats = manager.StatsOf("redis", "cache");
        Assert.True(stats.Delivered == 30, stats.ToString());
        Assert.Equal(0, stats.DeadLettered);
        Assert.Empty(dlq.Letters);
        using var client = new Resp(redis.Port);
        // Every payload of the hook calls made during and after the outage is there once the server is back.
        foreach (var i in Enumerable.Range(5, 25)) Assert.Equal(PayloadData.Of(Reading.Sample(i)).ToJson(), client.Call("GET", $"idle:reading:{i}"));
        await manager.CloseAsync();
    }

    [Fact]
    public async Task An_outage_opens_the_breaker_sends_payloads_to_the_dlq_and_recovery_closes_it_with_every_input_accounted_for()
    {
        var dlqTopic = kafka.CreateTopic("redis_outage_dlq");
        var metrics = new DrakkarMetrics();
        var dlq = new KafkaDeadLetterQueue(dlqTopic, kafka.BootstrapServers, metrics, NullLogger.Instance, new SinkSecretMasker());
        var manager = Manager(redis.Url, dlq, new SinkManagerOptions
        {
            CircuitBreaker = new CircuitBreakerConfig { FailureThreshold = 2, CooldownSeconds = 0.3 },
        }, metrics, prefix: "outage:");
        await manager.StartAsync(default);
        const int perBatch = 10;
        var sent = 0;
        async Task SendAsync()
        {
            await manager.DeliverAsync(Batch(sent, perBatch), Origin("orders", 0, sent), default);
            sent += perBatch;
        }

        for (var i = 0; i < 5; i++) await SendAsync();
        redis.Stop();
        try
        {
            await Eventually.True(() =>
            {
                SendAsync().GetAwaiter().GetResult();
                return manager.StatsOf("redis", "cache").Circuit == CircuitState.Open;
            }, TimeSpan.FromSeconds(30), "the breaker to open during the outage");
            for (var i = 0; i < 3; i++) await SendAsync();
            Assert.Equal(1.0, metrics.SinkCircuitOpen.Value("redis", "cache"));
        }
        finally
        {
            redis.Start();
        }

        await Eventually.True(() =>
        {
            SendAsync().GetAwaiter().GetResult();
            return manager.StatsOf("redis", "cache").Circuit == CircuitState.Closed;
        }, TimeSpan.FromSeconds(30), "the breaker to close after recovery");
        var lastBatchStart = sent;
        await SendAsync();
        await manager.CloseAsync();

        var stats = manager.StatsOf("redis", "cache");
        Assert.Equal(sent, stats.Delivered + stats.DeadLettered);
        Assert.True(stats.DeadLettered > 0);
        Assert.True(metrics.SinkCircuitTrips.Value("redis", "cache") >= 1);
        Assert.Equal(0.0, metrics.SinkCircuitOpen.Value("redis", "cache"));
        var letters = Consume(kafka.BootstrapServers, dlqTopic, (int)stats.DeadLettered / perBatch);
        Assert.Equal(stats.DeadLettered, letters.Sum(l => Json(l.Message.Value).GetProperty("original_payloads").GetArrayLength()));
        Assert.Contains(letters, l => Json(l.Message.Value).GetProperty("error").GetString() == "circuit open");
        // The client's failure in a line: without its diagnostic dump (thread pool state, counters, version).
        var failures = letters.Select(l => Json(l.Message.Value).GetProperty("error").GetString()!).Where(e => e != "circuit open").ToList();
        Assert.NotEmpty(failures);
        Assert.All(failures, error => Assert.True(error.Length < 300 && !error.Contains("IOCP", StringComparison.Ordinal), error));
        using var client = new Resp(redis.Port);
        Assert.Equal(PayloadData.Of(Reading.Sample(lastBatchStart)).ToJson(), client.Call("GET", $"outage:reading:{lastBatchStart}"));
    }
}
