namespace Drakkar.Runtime.Tests.Configuration;

using static ConfigTestSupport;

public sealed class ConfigBindingTests
{
    internal const string FullYaml = """
        worker_name_env: MY_WORKER
        cluster_name: eu-west
        cluster_name_env: MY_CLUSTER
        kafka:
          brokers: "kafka-1:9092,kafka-2:9092"
          source_topic: search-requests
          consumer_group: search-workers
          max_poll_interval_ms: 600_000
          session_timeout_ms: 30000
          heartbeat_interval_ms: 2000
          commit_interval_ms: 0
          ui_url: "http://kafka-ui:8080"
          ui_cluster_name: prod
        executor:
          binary_path: /usr/bin/grep
          env: { LANG: C.UTF-8, MODE: fast }
          env_inherit_parent: no
          env_inherit_deny: ["DK_*", "*SECRET*"]
          max_executors: 8
          task_timeout_seconds: 60
          window_size: 50
          max_retries: 0
          drain_timeout_seconds: 15
          backpressure_high_multiplier: 16
          backpressure_low_multiplier: 16
          max_output_bytes: 1024
        sinks:
          kafka:
            results: { topic: search-results, brokers: "other:9092", idempotent: true, ui_url: "http://ui/results" }
            alerts: { topic: search-alerts }
          postgres:
            main:
              dsn: "Host=db;Username=app;Password=pw;Database=app"
              pool_min: 1
              pool_max: 4
              mode: upsert
              on_conflict: [request_id, pattern]
              ui_url: "http://pg-ui"
            archive: { dsn: "postgresql://u:p@db/archive", mode: bulk }
          mongo:
            docs: { uri: "mongodb://mongo:27017", database: search, ui_url: "http://mongo-ui" }
          http:
            hook:
              url: "https://hooks.example.com/search"
              method: put
              timeout_seconds: 5
              headers: { Authorization: "Bearer abc", X-Team: search }
              max_retries: 1
              ui_url: "http://hook-ui"
          redis:
            cache: { url: "redis://:pw@redis:6379/1", key_prefix: "drakkar:", ui_url: "http://redis-ui" }
          filesystem:
            files: { base_path: /var/lib/drakkar/out, ui_url: "http://files-ui" }
          custom:
            s3:
              archive:
                bucket: results
                part_size_mb: 16
                batch_size: 50
                on_outage: dlq
                ui_url: "http://s3-ui"
                auth: { access_key_id: AKIA, secret_access_key: shh }
                regions: [eu-west-1, eu-central-1]
          circuit_breaker: { failure_threshold: 2, cooldown_seconds: 7.5 }
        dlq: { topic: search-dlq, brokers: "dlq:9092" }
        metrics: { enabled: false, port: 9191 }
        logging: { level: debug, format: console, output: "/var/log/{worker_id}.log" }
        debug:
          enabled: false
          host: 0.0.0.0
          port: 8181
          auth_token: "  s3cret  "
          allowed_ws_origins: ["https://ui.example.com"]
          debug_url: "http://debug"
          db_dir: /var/lib/drakkar
          store_events: false
          store_config: false
          store_state: false
          state_sync_interval_seconds: 20
          expose_env_vars: [REGION]
          rotation_interval_minutes: 30
          retention_hours: 12
          retention_max_events: 1000
          store_output: false
          flush_interval_seconds: 2
          max_buffer: 2000
          max_flush_retries: 5
          max_ui_rows: 200
          log_min_duration_ms: 1
          ws_min_duration_ms: 2
          event_min_duration_ms: 3
          output_min_duration_ms: 4
          prometheus_url: "http://prom:9090"
          prometheus_rate_interval: 1m
          prometheus_worker_label: worker
          prometheus_cluster_label: cluster
          custom_links:
            - { name: Grafana, url: "http://grafana" }
        cache:
          enabled: true
          db_dir: /var/cache/drakkar
          flush_interval_seconds: 1.5
          cleanup_interval_seconds: 90
          max_memory_entries: null
          stale_file_hours: 48
          peer_sync:
            enabled: false
            interval_seconds: 10
            batch_size: 50
            timeout_seconds: 2
            cycle_deadline_seconds: 9
        """;

    [Fact]
    public void Full_yaml_binds_every_top_level_kafka_and_executor_key()
    {
        var config = ConfigLoader.LoadFromYaml(FullYaml, Env());

        Assert.Equal("MY_WORKER", config.WorkerNameEnv);
        Assert.Equal("eu-west", config.ClusterName);
        Assert.Equal("MY_CLUSTER", config.ClusterNameEnv);

        var kafka = config.Kafka;
        Assert.Equal("kafka-1:9092,kafka-2:9092", kafka.Brokers);
        Assert.Equal("search-requests", kafka.SourceTopic);
        Assert.Equal("search-workers", kafka.ConsumerGroup);
        Assert.Equal(600_000, kafka.MaxPollIntervalMs);
        Assert.Equal(30_000, kafka.SessionTimeoutMs);
        Assert.Equal(2_000, kafka.HeartbeatIntervalMs);
        Assert.Equal(0, kafka.CommitIntervalMs);
        Assert.Equal("http://kafka-ui:8080", kafka.UiUrl);
        Assert.Equal("prod", kafka.UiClusterName);

        var executor = config.Executor;
        Assert.Equal("/usr/bin/grep", executor.BinaryPath);
        Assert.Equal(new Dictionary<string, string> { ["LANG"] = "C.UTF-8", ["MODE"] = "fast" }, executor.Env);
        Assert.False(executor.EnvInheritParent);
        Assert.Equal(["DK_*", "*SECRET*"], executor.EnvInheritDeny);
        Assert.Equal(8, executor.MaxExecutors);
        Assert.Equal(60, executor.TaskTimeoutSeconds);
        Assert.Equal(50, executor.WindowSize);
        Assert.Equal(0, executor.MaxRetries);
        Assert.Equal(15, executor.DrainTimeoutSeconds);
        Assert.Equal(16, executor.BackpressureHighMultiplier);
        Assert.Equal(16, executor.BackpressureLowMultiplier);
        Assert.Equal(1024, executor.MaxOutputBytes);
    }

    [Fact]
    public void Full_yaml_binds_all_six_sink_kinds_custom_sinks_and_the_breaker()
    {
        var sinks = ConfigLoader.LoadFromYaml(FullYaml, Env()).Sinks;

        Assert.Equal(["alerts", "results"], sinks.Kafka.Keys.Order());
        var results = sinks.Kafka["results"];
        Assert.Equal(("search-results", "other:9092", true, "http://ui/results"), (results.Topic, results.Brokers, results.Idempotent, results.UiUrl));
        Assert.Equal("search-alerts", sinks.Kafka["alerts"].Topic);

        var main = sinks.Postgres["main"];
        Assert.Equal("Host=db;Username=app;Password=pw;Database=app", main.Dsn);
        Assert.Equal((1, 4, PostgresWriteMode.Upsert, "http://pg-ui"), (main.PoolMin, main.PoolMax, main.Mode, main.UiUrl));
        Assert.Equal(["request_id", "pattern"], main.OnConflict);
        Assert.Equal(PostgresWriteMode.Bulk, sinks.Postgres["archive"].Mode);

        var mongo = sinks.Mongo["docs"];
        Assert.Equal(("mongodb://mongo:27017", "search", "http://mongo-ui"), (mongo.Uri, mongo.Database, mongo.UiUrl));

        var http = sinks.Http["hook"];
        Assert.Equal("https://hooks.example.com/search", http.Url);
        Assert.Equal("PUT", http.Method);
        Assert.Equal((5, 1, "http://hook-ui"), (http.TimeoutSeconds, http.MaxRetries, http.UiUrl));
        Assert.Equal("Bearer abc", http.Headers["authorization"]);
        Assert.Equal("search", http.Headers["X-Team"]);

        var redis = sinks.Redis["cache"];
        Assert.Equal(("redis://:pw@redis:6379/1", "drakkar:", "http://redis-ui"), (redis.Url, redis.KeyPrefix, redis.UiUrl));

        var files = sinks.Filesystem["files"];
        Assert.Equal(("/var/lib/drakkar/out", "http://files-ui"), (files.BasePath, files.UiUrl));

        var archive = Assert.Single(Assert.Single(sinks.Custom, kind => kind.Key == "s3").Value).Value;
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["bucket"] = "results",
                ["part_size_mb"] = "16",
                ["auth.access_key_id"] = "AKIA",
                ["auth.secret_access_key"] = "shh",
                ["regions.0"] = "eu-west-1",
                ["regions.1"] = "eu-central-1",
            },
            archive.Settings);
        // The delivery keys every instance has are Drakkar's, bound and checked, and not among the plugin's settings.
        Assert.Equal((50, 0, OutagePolicy.Dlq, 30.0, "http://s3-ui"),
            (archive.BatchSize, archive.LingerMs, archive.OnOutage, archive.AttemptTimeoutSeconds, archive.UiUrl));
        Assert.True(sinks.Custom["s3"].ContainsKey("archive"));

        Assert.Equal(2, sinks.CircuitBreaker.FailureThreshold);
        Assert.Equal(7.5, sinks.CircuitBreaker.CooldownSeconds);
    }

    [Fact]
    public void Full_yaml_binds_dlq_metrics_logging_debug_and_cache()
    {
        var config = ConfigLoader.LoadFromYaml(FullYaml, Env());

        Assert.Equal(("search-dlq", "dlq:9092"), (config.Dlq.Topic, config.Dlq.Brokers));
        Assert.Equal((false, 9191), (config.Metrics.Enabled, config.Metrics.Port));
        Assert.Equal(("DEBUG", LogFormat.Console, "/var/log/{worker_id}.log"), (config.Logging.Level, config.Logging.Format, config.Logging.Output));

        var debug = config.Debug;
        Assert.False(debug.Enabled);
        Assert.Equal(("0.0.0.0", 8181), (debug.Host, debug.Port));
        Assert.Equal("s3cret", debug.AuthToken);
        Assert.Equal(["https://ui.example.com"], debug.AllowedWsOrigins);
        Assert.Equal(("http://debug", "/var/lib/drakkar"), (debug.DebugUrl, debug.DbDir));
        Assert.Equal((false, false, false, false), (debug.StoreEvents, debug.StoreConfig, debug.StoreState, debug.StoreOutput));
        Assert.Equal(20, debug.StateSyncIntervalSeconds);
        Assert.Equal(["REGION"], debug.ExposeEnvVars);
        Assert.Equal((30, 12, 1000), (debug.RotationIntervalMinutes, debug.RetentionHours, debug.RetentionMaxEvents));
        Assert.Equal((2, 2000, 5, 200), (debug.FlushIntervalSeconds, debug.MaxBuffer, debug.MaxFlushRetries, debug.MaxUiRows));
        Assert.Equal((1, 2, 3, 4), (debug.LogMinDurationMs, debug.WsMinDurationMs, debug.EventMinDurationMs, debug.OutputMinDurationMs));
        Assert.Equal(("http://prom:9090", "1m", "worker", "cluster"),
            (debug.PrometheusUrl, debug.PrometheusRateInterval, debug.PrometheusWorkerLabel, debug.PrometheusClusterLabel));
        var link = Assert.Single(debug.CustomLinks);
        Assert.Equal(new Dictionary<string, string> { ["name"] = "Grafana", ["url"] = "http://grafana" }, link);

        var cache = config.Cache;
        Assert.True(cache.Enabled);
        Assert.Equal("/var/cache/drakkar", cache.DbDir);
        Assert.Equal((1.5, 90.0), (cache.FlushIntervalSeconds, cache.CleanupIntervalSeconds));
        Assert.Null(cache.MaxMemoryEntries);
        Assert.Equal(48.0, cache.StaleFileHours);
        var sync = cache.PeerSync;
        Assert.Equal((false, 10.0, 50, 2.0, (double?)9.0),
            (sync.Enabled, sync.IntervalSeconds, sync.BatchSize, sync.TimeoutSeconds, sync.CycleDeadlineSeconds));
    }

    [Fact]
    public void Anchors_and_merge_keys_share_settings_and_explicit_keys_win()
    {
        var config = ConfigLoader.LoadFromYaml("""
            sinks:
              kafka:
                base: &base { topic: shared, brokers: "b:9092" }
                results:
                  <<: *base
                  topic: results
                copy: *base
            """, Env());

        Assert.Equal(("results", "b:9092"), (config.Sinks.Kafka["results"].Topic, config.Sinks.Kafka["results"].Brokers));
        Assert.Equal(("shared", "b:9092"), (config.Sinks.Kafka["copy"].Topic, config.Sinks.Kafka["copy"].Brokers));
    }

    [Fact]
    public void Quoted_scalars_that_look_like_numbers_stay_strings_and_null_binary_path_is_allowed()
    {
        var config = ConfigLoader.LoadFromYaml("""
            kafka: { source_topic: "123" }
            executor: { binary_path: ~ }
            """, Env());

        Assert.Equal("123", config.Kafka.SourceTopic);
        Assert.Null(config.Executor.BinaryPath);
    }
}
