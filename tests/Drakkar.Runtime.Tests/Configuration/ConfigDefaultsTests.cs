namespace Drakkar.Runtime.Tests.Configuration;

using static ConfigTestSupport;

public sealed class ConfigDefaultsTests
{
    [Fact]
    public void Empty_yaml_and_no_environment_give_drakkars_defaults()
    {
        var config = ConfigLoader.LoadFromYaml("", Env());

        Assert.Equal("WORKER_ID", config.WorkerNameEnv);
        Assert.Equal("", config.ClusterName);
        Assert.Equal("", config.ClusterNameEnv);

        var kafka = config.Kafka;
        Assert.Equal("localhost:9092", kafka.Brokers);
        Assert.Equal("input-events", kafka.SourceTopic);
        Assert.Equal("drakkar-workers", kafka.ConsumerGroup);
        Assert.Equal(300_000, kafka.MaxPollIntervalMs);
        Assert.Equal(45_000, kafka.SessionTimeoutMs);
        Assert.Equal(3_000, kafka.HeartbeatIntervalMs);
        Assert.Equal(1_000, kafka.CommitIntervalMs);
        Assert.Equal("", kafka.UiUrl);
        Assert.Equal("", kafka.UiClusterName);

        var executor = config.Executor;
        Assert.Null(executor.BinaryPath);
        Assert.Empty(executor.Env);
        Assert.True(executor.EnvInheritParent);
        Assert.Equal(["DK_*"], executor.EnvInheritDeny);
        Assert.Equal(4, executor.MaxExecutors);
        Assert.Equal(120, executor.TaskTimeoutSeconds);
        Assert.Equal(100, executor.WindowSize);
        Assert.Equal(3, executor.MaxRetries);
        Assert.Equal(30, executor.DrainTimeoutSeconds);
        Assert.Equal(32, executor.BackpressureHighMultiplier);
        Assert.Equal(4, executor.BackpressureLowMultiplier);
        Assert.Equal(16 * 1024 * 1024, executor.MaxOutputBytes);

        var sinks = config.Sinks;
        Assert.Empty(sinks.Kafka);
        Assert.Empty(sinks.Postgres);
        Assert.Empty(sinks.Mongo);
        Assert.Empty(sinks.Http);
        Assert.Empty(sinks.Redis);
        Assert.Empty(sinks.Filesystem);
        Assert.Empty(sinks.Custom);
        Assert.Equal(5, sinks.CircuitBreaker.FailureThreshold);
        Assert.Equal(30.0, sinks.CircuitBreaker.CooldownSeconds);

        Assert.Equal("", config.Dlq.Topic);
        Assert.Equal("", config.Dlq.Brokers);
        Assert.True(config.Metrics.Enabled);
        Assert.Equal(9090, config.Metrics.Port);
        Assert.Equal("INFO", config.Logging.Level);
        Assert.Equal(LogFormat.Json, config.Logging.Format);
        Assert.Equal("stderr", config.Logging.Output);
    }

    [Fact]
    public void Debug_and_cache_defaults_match_drakkar_but_the_debug_ui_is_opt_in()
    {
        var config = ConfigLoader.LoadFromYaml("", Env());

        var debug = config.Debug;
        // Python Drakkar enables it; here a listening port and files on disk are opted into (docs/debug-ui.md).
        Assert.False(debug.Enabled);
        Assert.Equal("127.0.0.1", debug.Host);
        Assert.Equal(8080, debug.Port);
        Assert.Equal("", debug.AuthToken);
        Assert.Empty(debug.AllowedWsOrigins);
        Assert.Equal("", debug.DebugUrl);
        Assert.Equal("/tmp", debug.DbDir);
        Assert.True(debug.StoreEvents);
        Assert.True(debug.StoreConfig);
        Assert.True(debug.StoreState);
        Assert.Equal(10, debug.StateSyncIntervalSeconds);
        Assert.Empty(debug.ExposeEnvVars);
        Assert.Equal(60, debug.RotationIntervalMinutes);
        Assert.Equal(24, debug.RetentionHours);
        Assert.Equal(100_000, debug.RetentionMaxEvents);
        Assert.True(debug.StoreOutput);
        Assert.Equal(5, debug.FlushIntervalSeconds);
        Assert.Equal(50_000, debug.MaxBuffer);
        Assert.Equal(3, debug.MaxFlushRetries);
        Assert.Equal(5_000, debug.MaxUiRows);
        Assert.Equal(500, debug.LogMinDurationMs);
        Assert.Equal(500, debug.WsMinDurationMs);
        Assert.Equal(0, debug.EventMinDurationMs);
        Assert.Equal(500, debug.OutputMinDurationMs);
        Assert.Equal("", debug.PrometheusUrl);
        Assert.Equal("5m", debug.PrometheusRateInterval);
        Assert.Equal("", debug.PrometheusWorkerLabel);
        Assert.Equal("", debug.PrometheusClusterLabel);
        Assert.Empty(debug.CustomLinks);

        var cache = config.Cache;
        Assert.False(cache.Enabled);
        Assert.Equal("", cache.DbDir);
        Assert.Equal(3.0, cache.FlushIntervalSeconds);
        Assert.Equal(60.0, cache.CleanupIntervalSeconds);
        Assert.Equal(24.0, cache.StaleFileHours);
        Assert.Equal(10_000, cache.MaxMemoryEntries);
        Assert.True(cache.PeerSync.Enabled);
        Assert.Equal(30.0, cache.PeerSync.IntervalSeconds);
        Assert.Equal(500, cache.PeerSync.BatchSize);
        Assert.Equal(5.0, cache.PeerSync.TimeoutSeconds);
        Assert.Null(cache.PeerSync.CycleDeadlineSeconds);
    }

    [Fact]
    public void Sink_instance_defaults_match_drakkar()
    {
        var config = ConfigLoader.LoadFromYaml("""
            sinks:
              kafka: { out: { topic: t } }
              postgres: { db: { dsn: "Host=h" } }
              http: { hook: { url: "https://example.com/in" } }
              redis: { cache: {} }
            """, Env());

        var kafka = config.Sinks.Kafka["out"];
        Assert.Equal("", kafka.Brokers);
        Assert.False(kafka.Idempotent);
        var postgres = config.Sinks.Postgres["db"];
        Assert.Equal(2, postgres.PoolMin);
        Assert.Equal(10, postgres.PoolMax);
        Assert.Equal(PostgresWriteMode.Insert, postgres.Mode);
        Assert.Empty(postgres.OnConflict);
        var http = config.Sinks.Http["hook"];
        Assert.Equal("POST", http.Method);
        Assert.Equal(30, http.TimeoutSeconds);
        Assert.Equal(3, http.MaxRetries);
        Assert.Empty(http.Headers);
        var redis = config.Sinks.Redis["cache"];
        Assert.Equal("redis://localhost:6379/0", redis.Url);
        Assert.Equal("", redis.KeyPrefix);
    }

    [Fact]
    public void Sections_left_empty_keep_their_defaults()
    {
        var config = ConfigLoader.LoadFromYaml("""
            kafka:
            executor:
            sinks:
            """, Env());

        Assert.Equal("localhost:9092", config.Kafka.Brokers);
        Assert.Equal(4, config.Executor.MaxExecutors);
        Assert.Empty(config.Sinks.Kafka);
    }
}
