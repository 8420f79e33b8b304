using System.Net.Sockets;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Drakkar.Sinks.Http;
using Microsoft.Extensions.Logging.Abstractions;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

public sealed class SinkRoutingTests
{
    [Fact]
    public async Task A_payload_without_a_name_goes_to_the_only_instance_of_its_kind()
    {
        var sink = new ScriptedSink("http", "hook");
        var manager = Manager([sink], new RecordingDlq());
        await manager.DeliverAsync(Http(3), Origin(), default);
        var batch = Assert.Single(sink.Delivered);
        Assert.Equal(3, batch.Count);
        Assert.Equal("source", batch.Topic);
        Assert.Equal(3, manager.StatsOf("http", "hook").Delivered);
    }

    [Fact]
    public async Task Groups_deliver_concurrently_so_a_slow_sink_does_not_block_another()
    {
        var fastDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = new ScriptedSink("http", "slow") { Behavior = async (_, _) => await fastDone.Task.WaitAsync(TimeSpan.FromSeconds(10)) };
        var fast = new ScriptedSink("http", "fast") { Behavior = (_, _) => { fastDone.TrySetResult(); return ValueTask.CompletedTask; } };
        var manager = Manager([slow, fast], new RecordingDlq());
        var result = Http(1, "slow");
        result.Http.Add(HttpPayload.Of(Reading.Sample(9), "fast"));

        // If groups ran one after the other, the slow sink would wait for a fast delivery that never starts.
        await manager.DeliverAsync(result, Origin(), default);
        Assert.Single(slow.Delivered);
        Assert.Single(fast.Delivered);
    }

    [Fact]
    public async Task An_unknown_name_fails_only_that_payload_and_sends_it_to_the_dlq_with_a_clear_error()
    {
        var sink = new ScriptedSink("http", "hook");
        var dlq = new RecordingDlq();
        var manager = Manager([sink], dlq);
        var result = Http(2);
        result.Http.Add(HttpPayload.Of(Reading.Sample(7), "nope"));

        await manager.DeliverAsync(result, Origin(), default);

        Assert.Equal(2, Assert.Single(sink.Delivered).Count);
        var letter = Assert.Single(dlq.Letters);
        Assert.Equal("http", letter.SinkKind);
        Assert.Equal("nope", letter.SinkName);
        Assert.Contains("no http sink named 'nope'", letter.Error);
        Assert.Contains("hook", letter.Error);
        Assert.Equal("r-7", ((Reading)Assert.Single(letter.Payloads).Data.Value).Id);
    }

    [Fact]
    public async Task Sink_names_a_handler_computed_never_become_metric_labels()
    {
        var metrics = new DrakkarMetrics();
        var manager = Manager([new ScriptedSink("http", "hook")], new RecordingDlq(), metrics: metrics);
        var result = new CollectResult();
        for (var i = 0; i < 20; i++) result.Http.Add(HttpPayload.Of(Reading.Sample(i), $"user-{i}"));
        result.Custom.Add(new CustomPayload("kind-{computed}", "x", PayloadData.Of(Reading.Sample(99))));

        await manager.DeliverAsync(result, Origin(), default);

        var exported = metrics.Registry.Export();
        Assert.DoesNotContain("user-", exported);
        Assert.DoesNotContain("kind-{computed}", exported);
        Assert.Contains("drakkar_sink_dlq_messages_total{sink_type=\"http\",sink_name=\"unroutable\"} 20", exported);
        Assert.Contains("drakkar_sink_dlq_messages_total{sink_type=\"unknown\",sink_name=\"unroutable\"} 1", exported);
    }

    [Fact]
    public async Task An_empty_name_with_two_instances_is_ambiguous_and_goes_to_the_dlq()
    {
        var dlq = new RecordingDlq();
        var a = new ScriptedSink("http", "a");
        var b = new ScriptedSink("http", "b");
        var manager = Manager([a, b], dlq);
        await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Empty(a.Delivered);
        Assert.Empty(b.Delivered);
        var letter = Assert.Single(dlq.Letters);
        Assert.Contains("2 http sinks are configured (a, b)", letter.Error);
    }

    [Fact]
    public async Task A_payload_for_a_kind_with_no_instance_goes_to_the_dlq_naming_the_config_key()
    {
        var dlq = new RecordingDlq();
        var manager = Manager([new ScriptedSink("http", "hook")], dlq);
        var result = new CollectResult();
        result.Redis.Add(RedisPayload.Of("k", Reading.Sample(1)));
        await manager.DeliverAsync(result, Origin(), default);
        Assert.Contains("sinks.redis", Assert.Single(dlq.Letters).Error);
    }

    [Fact]
    public void Startup_refuses_declared_sinks_missing_from_config_and_unknown_plugin_kinds_listing_every_problem()
    {
        var config = new DrakkarConfig();
        config.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = "out" };
        config.Sinks.Custom["warehouse"] = new() { ["main"] = new CustomSinkConfig() };
        var plugins = new SinkRegistry().Register("ledger", c => new ScriptedSink(c.Kind, c.Name));
        SinkDeclaration[] declared = [new(SinkKind.Kafka, "results"), new(SinkKind.Kafka, "alerts"), new(SinkKind.Postgres, "main")];

        var error = Assert.Throws<SinkConfigurationException>(() =>
            SinkManager.Create(config, declared, new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance, plugins));

        Assert.Contains("sinks.kafka.alerts", error.Message);
        Assert.Contains("sinks.postgres.main", error.Message);
        Assert.DoesNotContain("sinks.kafka.results", error.Message);
        Assert.Contains("unknown plugin sink kind 'warehouse'", error.Message);
        Assert.Contains("Known plugin kinds: ledger", error.Message);
    }

    [Fact]
    public void Under_exactly_once_startup_refuses_a_handler_that_declares_a_sink_that_is_not_kafka()
    {
        var config = new DrakkarConfig { Kafka = { ExactlyOnce = true } };
        config.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = "out" };
        SinkDeclaration[] declared = [new(SinkKind.Kafka, "results"), new(SinkKind.Filesystem, "archive")];

        var error = Assert.Throws<SinkConfigurationException>(() =>
            SinkManager.Create(config, declared, new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance));

        Assert.Contains("sinks.filesystem.archive: the handler declares this sink, but kafka.exactly_once allows only Kafka sinks", error.Message);
        Assert.DoesNotContain("sinks.kafka.results", error.Message);
    }

    [Fact]
    public void Invalid_sink_settings_are_reported_with_their_key_path_and_without_secrets()
    {
        var config = new DrakkarConfig();
        config.Sinks.Http["meta"] = new HttpSinkConfig { Url = "http://169.254.169.254/latest/meta-data" };
        config.Sinks.Redis["cache"] = new RedisSinkConfig { Url = "redis://u:topsecret@cache:6380/0?ssl=true" };
        config.Sinks.Filesystem["files"] = new FileSinkConfig();

        var error = Assert.Throws<SinkConfigurationException>(() =>
            SinkManager.Create(config, [], new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance));

        Assert.Contains("sinks.http.meta.url points at the cloud metadata endpoint 169.254.169.254", error.Message);
        Assert.Contains("sinks.redis.cache.url", error.Message);
        Assert.Contains("sinks.filesystem.files.base_path is required", error.Message);
        Assert.DoesNotContain("topsecret", error.Message);
    }

    [Fact]
    public async Task A_connect_failure_stops_startup_closes_the_connected_sinks_and_masks_credentials()
    {
        var good = new ScriptedSink("http", "good");
        var bad = new ScriptedSink("redis", "bad") { OnConnect = () => throw new IOException("cannot reach redis://app:hunter22@cache:6379/0") };
        var manager = Manager([good, bad], new RecordingDlq());

        var error = await Assert.ThrowsAsync<SinkStartupException>(() => manager.StartAsync(default));

        Assert.Contains("sinks.redis.bad", error.Message);
        Assert.Contains("redis://app:***@cache", error.Message);
        Assert.DoesNotContain("hunter22", error.Message);
        Assert.True(good.Closed);
        Assert.False(manager.IsReady);
    }

    [Fact]
    public async Task Sinks_connect_concurrently()
    {
        // Each connect waits for the other to have started: connecting one after the other would never finish.
        var aStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var a = new ScriptedSink("http", "a") { OnConnect = async () => { aStarted.SetResult(); await bStarted.Task; } };
        var b = new ScriptedSink("redis", "b") { OnConnect = async () => { bStarted.SetResult(); await aStarted.Task; } };
        var manager = Manager([a, b], new RecordingDlq());
        await manager.StartAsync(default).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(manager.IsReady);
    }

    [Fact]
    public async Task Close_errors_are_logged_not_thrown_and_readiness_follows_every_sink()
    {
        var a = new ScriptedSink("http", "a") { OnClose = () => throw new InvalidOperationException("boom") };
        var b = new ScriptedSink("filesystem", "b");
        var manager = Manager([a, b], new RecordingDlq());
        Assert.False(manager.IsReady);
        await manager.StartAsync(default);
        Assert.True(manager.IsReady);
        Assert.Empty(manager.NotReadyReasons);

        await manager.CloseAsync();

        Assert.True(a.Closed);
        Assert.True(b.Closed);
        Assert.False(manager.IsReady);
        Assert.Equal(["sink http:a is not connected", "sink filesystem:b is not connected"], manager.NotReadyReasons);
    }

    [Fact]
    public async Task Credentials_in_sink_errors_never_reach_the_dlq_or_stats()
    {
        var dlq = new RecordingDlq();
        var sink = new ScriptedSink("http", "hook")
        {
            Behavior = (_, _) => throw new InvalidOperationException("login failed for postgresql://writer:s3cr3tpass@db:5432/app; Password=s3cr3tpass"),
        };
        var manager = Manager([sink], dlq);
        await manager.DeliverAsync(Http(1), Origin(), default);
        var letter = Assert.Single(dlq.Letters);
        Assert.DoesNotContain("s3cr3tpass", letter.Error);
        Assert.Contains("writer:***@db", letter.Error);
        Assert.DoesNotContain("s3cr3tpass", manager.StatsOf("http", "hook").LastError);
    }
}

public sealed class DeliveryDecisionTests
{
    [Fact]
    public async Task An_idempotent_sink_retries_transient_errors_three_times_spaced_50_100_200_ms()
    {
        var delays = new RecordedDelays();
        var sink = new ScriptedSink("redis", "cache", idempotent: true)
        {
            Behavior = (_, call) => call <= 3 ? throw new SocketException((int)SocketError.ConnectionReset) : ValueTask.CompletedTask,
        };
        var hookCalls = 0;
        var manager = Manager([sink], new RecordingDlq(), new SinkManagerOptions
        {
            Delay = delays.Delay,
            OnDeliveryError = _ => { hookCalls++; return ValueTask.FromResult(DeliveryAction.Dlq); },
        });

        await manager.DeliverAsync(Http(0).WithRedis(2), Origin(), default);

        Assert.Equal(4, sink.Calls);
        Assert.Equal([TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200)], delays.Requested);
        Assert.Equal(0, hookCalls);
        Assert.Equal(2, manager.StatsOf("redis", "cache").Delivered);
        Assert.Equal(3, manager.StatsOf("redis", "cache").Retries);
    }

    [Fact]
    public async Task Fast_retries_really_wait_at_least_their_backoff()
    {
        var sink = new ScriptedSink("redis", "cache", idempotent: true) { Behavior = (_, _) => throw new TimeoutException("slow") };
        var dlq = new RecordingDlq();
        var manager = Manager([sink], dlq, new SinkManagerOptions());

        await manager.DeliverAsync(new CollectResult().WithRedis(1), Origin(), default);

        var times = sink.CallTimes.ToArray();
        Assert.Equal(4, times.Length);
        // .NET timers count whole milliseconds of a coarser clock and may fire a few ms early against Stopwatch; above,
        // each gap may exceed its backoff by a second on a busy machine, which still tells 50/100/200 ms from seconds.
        var gaps = times.Zip(times.Skip(1), (a, b) => System.Diagnostics.Stopwatch.GetElapsedTime(a, b).TotalMilliseconds).ToArray();
        Assert.InRange(gaps[0], 45, 50 + 1000);
        Assert.InRange(gaps[1], 95, 100 + 1000);
        Assert.InRange(gaps[2], 195, 200 + 1000);
        Assert.Single(dlq.Letters);
    }

    [Fact]
    public async Task A_non_idempotent_sink_gets_one_try_and_non_transient_errors_are_not_fast_retried()
    {
        var delays = new RecordedDelays();
        var plain = new ScriptedSink("http", "hook") { Behavior = (_, _) => throw new IOException("reset") };
        var idempotentButBadData = new ScriptedSink("redis", "cache", idempotent: true) { Behavior = (_, _) => throw new FormatException("bad payload") };
        var dlq = new RecordingDlq();
        var manager = Manager([plain, idempotentButBadData], dlq, new SinkManagerOptions { Delay = delays.Delay });

        await manager.DeliverAsync(Http(1).WithRedis(1), Origin(), default);

        Assert.Equal(1, plain.Calls);
        Assert.Equal(1, idempotentButBadData.Calls);
        Assert.Empty(delays.Requested);
        Assert.Equal(2, dlq.Letters.Count);
    }

    [Fact]
    public async Task Retry_redelivers_up_to_max_retries_then_falls_through_to_the_dlq()
    {
        var sink = new ScriptedSink("http", "hook") { Behavior = (_, _) => throw new InvalidOperationException("HTTP 500") };
        var dlq = new RecordingDlq();
        var attempts = new List<int>();
        var manager = Manager([sink], dlq, new SinkManagerOptions
        {
            MaxRetries = 2,
            OnDeliveryError = e => { attempts.Add(e.Attempt); return ValueTask.FromResult(DeliveryAction.Retry); },
            Delay = (_, _) => Task.CompletedTask,
        });

        await manager.DeliverAsync(Http(2), Origin(), default);

        Assert.Equal(3, sink.Calls);
        Assert.Equal([1, 2, 3], attempts);
        var letter = Assert.Single(dlq.Letters);
        Assert.Equal(3, letter.AttemptCount);
        Assert.Equal(2, letter.Payloads.Count);
        var stats = manager.StatsOf("http", "hook");
        Assert.Equal(2, stats.Retries);
        Assert.Equal(3, stats.Errors);
        Assert.Equal(2, stats.DeadLettered);
    }

    [Fact]
    public async Task A_held_group_probes_one_attempt_at_a_time_without_asking_OnDeliveryError_again()
    {
        var outage = new Outage();
        var sink = outage.Sink;
        var dlq = new RecordingDlq();
        var attempts = new System.Collections.Concurrent.ConcurrentQueue<int>();
        var manager = Manager([sink], dlq, new SinkManagerOptions
        {
            MaxRetries = 2,
            OnDeliveryError = e => { attempts.Enqueue(e.Attempt); return ValueTask.FromResult(DeliveryAction.Retry); },
            Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause },
            // The retry backoff and the probes' back-off, shortened; the breaker still lets a held group probe every 0.5 s.
            Delay = (_, token) => Task.Delay(20, token),
        });

        var delivery = manager.DeliverAsync(Http(1), Origin(), default).AsTask();
        // The first failure's Retry cycle (attempts 1-3), then held; then several probes.
        await Eventually.True(() => sink.Calls >= 7, TimeSpan.FromSeconds(20), "probes of the held group");
        Assert.False(delivery.IsCompleted);
        // Asked per probe, each probe ran a Retry cycle of its own: three calls and three decisions every time.
        Assert.Equal([1, 2, 3], attempts);

        outage.End();
        await delivery.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal([1, 2, 3], attempts);
        Assert.Empty(dlq.Letters);
        Assert.Equal(1, manager.StatsOf("http", "hook").Delivered);
        await manager.CloseAsync();
    }

    /// <summary>
    /// A Redis, Kafka or MongoDB client reports its connection back before the held payloads' next probe, which could be
    /// 5 s later: the held groups go as soon as the sink reads connected again.
    /// </summary>
    [Fact]
    public async Task A_held_instance_whose_sink_reports_its_connection_back_delivers_then_not_at_its_next_probe()
    {
        var outage = new Outage();
        var sink = outage.Sink;
        var dlq = new RecordingDlq();
        var manager = Manager([sink], dlq, new SinkManagerOptions
        {
            Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause },
            // The probes' waits never end by themselves: only a wake brings the held group back.
            Delay = (_, token) => Task.Delay(Timeout.Infinite, token),
        });

        var delivery = manager.DeliverAsync(Http(2), Origin(offsets: 3), default).AsTask();
        await Eventually.True(() => manager.HoldingForOutage, TimeSpan.FromSeconds(10), "the group held");
        await Task.Delay(700);   // past the breaker's 0.5 s before a held group may probe
        outage.End();
        sink.IsConnected = true;

        await delivery.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Empty(dlq.Letters);
        Assert.Equal(2, manager.StatsOf("http", "hook").Delivered);
        await manager.CloseAsync();
    }

    /// <summary>
    /// The instance's probes back off to every 5 s during a long outage; a reconnect wakes the held groups, and their
    /// probe must go then, not wait out that gap (it did: a newcomer saw Redis's held payloads go 5 s after the
    /// client reconnected, once in five restarts).
    /// </summary>
    [Fact]
    public async Task A_reconnect_after_probes_backed_off_delivers_at_once()
    {
        var outage = new Outage();
        var sink = outage.Sink;
        var dlq = new RecordingDlq();
        var manager = Manager([sink], dlq, new SinkManagerOptions { Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause } });
        sink.IsConnected = false;

        var delivery = manager.DeliverAsync(Http(2), Origin(offsets: 3), default).AsTask();
        await Eventually.True(() => manager.HoldingForOutage, TimeSpan.FromSeconds(10), "the group held");
        // Probes (one attempt each) after 0.5, 1 and 2 s: the next would be 4 s after the last.
        var atHold = sink.Calls;
        await Eventually.True(() => sink.Calls >= atHold + 3, TimeSpan.FromSeconds(20), "three probes failed");
        var reconnected = System.Diagnostics.Stopwatch.StartNew();
        outage.End();
        sink.IsConnected = true;

        await delivery.WaitAsync(TimeSpan.FromSeconds(20));
        var after = reconnected.Elapsed;
        await manager.CloseAsync();
        Assert.Empty(dlq.Letters);
        Assert.True(after < TimeSpan.FromSeconds(2), $"delivered {after.TotalSeconds:F1} s after the reconnect (the probe gap was 4 s)");
    }

    [Fact]
    public async Task Skip_drops_the_payloads_counts_them_and_tells_the_breaker_nothing()
    {
        var sink = new ScriptedSink("http", "hook") { Behavior = (_, _) => throw new InvalidOperationException("nope") };
        var dlq = new RecordingDlq();
        var metrics = new DrakkarMetrics();
        var manager = Manager([sink], dlq, new SinkManagerOptions
        {
            OnDeliveryError = _ => ValueTask.FromResult(DeliveryAction.Skip),
            CircuitBreaker = new CircuitBreakerConfig { FailureThreshold = 1 },
        }, metrics);

        await manager.DeliverAsync(Http(3), Origin(), default);
        await manager.DeliverAsync(Http(3), Origin(), default);

        Assert.Empty(dlq.Letters);
        Assert.Equal(2, sink.Calls);
        Assert.Equal(6, manager.StatsOf("http", "hook").Skipped);
        Assert.Equal(6, metrics.SinkDeliveriesSkipped.Value("http", "hook"));
        Assert.Equal(CircuitState.Closed, manager.StatsOf("http", "hook").Circuit);
    }

    [Fact]
    public async Task A_throwing_hook_falls_back_to_the_dlq()
    {
        var sink = new ScriptedSink("http", "hook") { Behavior = (_, _) => throw new InvalidOperationException("down") };
        var dlq = new RecordingDlq();
        var manager = Manager([sink], dlq, new SinkManagerOptions { OnDeliveryError = _ => throw new ArgumentException("hook bug") });
        await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Single(dlq.Letters);
    }

    [Fact]
    public async Task Backpressure_from_a_delivery_is_a_slow_down_not_a_failure_and_delivery_resumes_after_the_delay()
    {
        var delays = new RecordedDelays();
        var sink = new ScriptedSink("http", "hook")
        {
            Behavior = (_, call) => call == 1 ? throw new SinkBackpressureException(TimeSpan.FromSeconds(7)) : ValueTask.CompletedTask,
        };
        var dlq = new RecordingDlq();
        var hookCalls = 0;
        var manager = Manager([sink], dlq, new SinkManagerOptions
        {
            Delay = delays.Delay,
            OnDeliveryError = _ => { hookCalls++; return ValueTask.FromResult(DeliveryAction.Dlq); },
            CircuitBreaker = new CircuitBreakerConfig { FailureThreshold = 1 },
        });

        await manager.DeliverAsync(Http(2), Origin("orders", 3), default);

        Assert.Equal([TimeSpan.FromSeconds(7)], delays.Requested);
        Assert.Equal(0, hookCalls);
        Assert.Empty(dlq.Letters);
        Assert.Equal(2, manager.StatsOf("http", "hook").Delivered);
        Assert.Equal(CircuitState.Closed, manager.StatsOf("http", "hook").Circuit);
    }

    [Fact]
    public async Task A_host_that_abandons_the_partition_cancels_the_waiting_delivery_without_settling_it()
    {
        using var abandon = new CancellationTokenSource();
        var sink = new ScriptedSink("http", "hook")
        {
            Behavior = (_, _) =>
            {
                abandon.Cancel();
                throw new SinkBackpressureException(TimeSpan.FromMinutes(5));
            },
        };
        var dlq = new RecordingDlq();
        var manager = Manager([sink], dlq, new SinkManagerOptions());

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await manager.DeliverAsync(Http(1), Origin(), abandon.Token));
        Assert.Empty(dlq.Letters);
        Assert.Equal(0, manager.StatsOf("http", "hook").Delivered);
    }

    [Fact]
    public async Task A_batching_sink_buffers_until_flush_and_a_failed_flush_tells_the_host_not_to_commit()
    {
        var sink = new BufferingSink();
        var manager = Manager([sink], new RecordingDlq(), new SinkManagerOptions());
        await manager.DeliverAsync(Http(2), Origin("orders", 1), default);
        await manager.DeliverAsync(Http(1), Origin("orders", 2), default);
        Assert.Empty(sink.Written);

        await manager.FlushAsync("orders", 1, default);
        Assert.Equal(2, sink.Written.Count);

        sink.RefuseNextFlush = TimeSpan.FromSeconds(3);
        var pressure = await Assert.ThrowsAsync<SinkBackpressureException>(() => manager.FlushAsync("orders", 2, default));
        Assert.Equal(TimeSpan.FromSeconds(3), pressure.RetryAfter);

        manager.Discard("orders", 2);
        await manager.FlushAsync("orders", 2, default);
        Assert.Equal(2, sink.Written.Count);
    }
}

/// <summary>A batching sink in the Quix style: buffers per partition, writes on flush, can refuse a flush with backpressure.</summary>
internal sealed class BufferingSink : IBatchingSink
{
    private readonly Dictionary<(string, int), List<SinkPayload>> _buffers = [];

    public string Kind => "http";
    public string Name => "buffered";
    public bool IsIdempotent => false;
    public bool IsConnected => true;
    public List<SinkPayload> Written { get; } = [];
    public TimeSpan? RefuseNextFlush { get; set; }

    public ValueTask ConnectAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        lock (_buffers)
        {
            if (!_buffers.TryGetValue((batch.Topic, batch.Partition), out var buffer)) _buffers[(batch.Topic, batch.Partition)] = buffer = [];
            buffer.AddRange(batch.Payloads);
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(string topic, int partition, CancellationToken cancellationToken)
    {
        if (RefuseNextFlush is { } retryAfter)
        {
            RefuseNextFlush = null;
            throw new SinkBackpressureException(retryAfter);
        }
        lock (_buffers)
        {
            if (_buffers.Remove((topic, partition), out var buffer)) Written.AddRange(buffer);
        }
        return ValueTask.CompletedTask;
    }

    public void Discard(string topic, int partition)
    {
        lock (_buffers) _buffers.Remove((topic, partition));
    }
}

/// <summary>An HTTP sink that refuses every call as a transient failure ("connection refused") until <see cref="End"/>.</summary>
internal sealed class Outage
{
    private int _over;

    public Outage() =>
        Sink = new ScriptedSink("http", "hook")
        {
            Behavior = (_, _) => Volatile.Read(ref _over) == 0 ? throw new SinkTransientException("connection refused") : ValueTask.CompletedTask,
        };

    public ScriptedSink Sink { get; }

    public void End() => Volatile.Write(ref _over, 1);
}

internal static class CollectResultTestExtensions
{
    public static CollectResult WithRedis(this CollectResult result, int count)
    {
        for (var i = 0; i < count; i++) result.Redis.Add(RedisPayload.Of($"k{i}", Reading.Sample(i)));
        return result;
    }
}

public sealed class HeldDeliveryTests
{
    /// <summary>
    /// on_outage: pause with three groups held by a real HTTP sink while its receiver answers 503. Waits of 0.5 s are
    /// real; longer ones (the probes' back-off, up to 5 s) end only when the test opens a gate, so a group still
    /// waiting for its next probe time is seen to wait.
    /// </summary>
    [Fact]
    public async Task Once_a_probe_gets_through_every_other_held_group_is_delivered_without_waiting_for_its_next_probe()
    {
        using var receiver = new HttpReceiver();
        receiver.RespondWith(503);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var longWaits = 0;
        var dlq = new RecordingDlq();
        var manager = new SinkManager([new HttpSink("hook", new HttpSinkConfig { Url = receiver.Url, MaxRetries = 0 }, new SinkSecretMasker())], dlq,
            new SinkManagerOptions
            {
                Batching = (_, _) => SinkBatching.Default with { BatchSize = 1, OnOutage = OutagePolicy.Pause },
                Delay = (span, token) =>
                {
                    if (span <= TimeSpan.FromMilliseconds(500)) return Task.Delay(span, token);
                    Interlocked.Increment(ref longWaits);
                    return Volatile.Read(ref gate).Task.WaitAsync(token);
                },
            }, new DrakkarMetrics(), NullLoggerFactory.Instance);
        await manager.StartAsync(default);
        var deliveries = Enumerable.Range(1, 3).Select(i => manager.DeliverAsync(Http(1), Origin(offsets: i), default).AsTask()).ToArray();

        // Every group failed, probed once (503) or was turned away, and now waits for a later probe.
        await Eventually.True(() => Volatile.Read(ref longWaits) >= 3, TimeSpan.FromSeconds(20), "all three groups waiting for their next probe");
        receiver.Delay = TimeSpan.FromMilliseconds(300);   // the probe is in flight while the other groups wake
        receiver.RespondWith(200);
        // Past the instance's probe gap: 0.5 s, doubled by the one failed probe to 1 s (the probes back off together).
        await Task.Delay(1100);
        // One "5 s" wait ends for everyone: one group probes (300 ms), the others are turned away and wait again.
        Interlocked.Exchange(ref gate, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).SetResult();

        try
        {
            await Task.WhenAll(deliveries).WaitAsync(TimeSpan.FromSeconds(15));
        }
        finally
        {
            gate.TrySetResult();
        }
        Assert.Equal(3, receiver.Requests.Count(r => r.Status == 200));
        Assert.Empty(dlq.Letters);
        await manager.CloseAsync();
    }
}
