namespace Drakkar.Runtime.Tests.Configuration;

using static ConfigTestSupport;

public sealed class ConfigValidationTests
{
    [Fact]
    public void Many_mistakes_are_reported_together_in_one_exception_with_key_paths()
    {
        var error = LoadFails("""
            kafka:
              brokrs: "localhost:9092"
              max_poll_interval_ms: lots
            executor:
              max_executors: 0
              backpressure_high_multiplier: 2
              backpressure_low_multiplier: 8
              max_output_bytes: 100
            sinks:
              kafka:
                results: { brokers: "k:9092" }
              postgres:
                main: { dsn: "Host=db", mode: merge }
                upserts: { dsn: "Host=db", mode: upsert }
              mongo:
                docs: { uri: "mongodb://m:27017" }
              http:
                hook: { url: "ftp://files.example.com/in" }
              filesystem:
                files: {}
            metrics: { port: 70000 }
            logging: { format: xml }
            """);

        var expected = new Dictionary<string, string>
        {
            ["kafka.brokrs"] = "unknown key; did you mean 'brokers'?",
            ["kafka.max_poll_interval_ms"] = "must be a whole number (got 'lots')",
            ["executor.max_executors"] = "must be ≥ 1 (got 0)",
            ["executor.max_output_bytes"] = "must be ≥ 1024 (got 100)",
            ["executor.backpressure_low_multiplier"] = "must be ≤ backpressure_high_multiplier (2) (got 8)",
            ["sinks.kafka.results.topic"] = "is required (the topic this sink produces to)",
            ["sinks.postgres.main.mode"] = "must be one of insert, bulk, upsert (got 'merge')",
            ["sinks.postgres.upserts.on_conflict"] = "mode 'upsert' needs the conflict key columns, e.g. on_conflict: [request_id]",
            ["sinks.mongo.docs.database"] = "is required (the database the collections live in)",
            ["sinks.http.hook.url"] = "must use http:// or https://, got 'ftp://'",
            ["sinks.filesystem.files.base_path"] = "is required (the directory every written file must stay inside)",
            ["metrics.port"] = "must be ≤ 65535 (got 70000)",
            ["logging.format"] = "must be one of json, console (got 'xml')",
        };
        Assert.Equal(expected, error.Problems.ToDictionary(p => p.Path, p => p.Message));

        var lines = error.Message.Split('\n');
        Assert.Equal("Invalid configuration (13 problems):", lines[0]);
        Assert.Equal(13, lines.Length - 1);
        Assert.Contains("  executor.max_executors: must be ≥ 1 (got 0) [line 5]", lines);
        Assert.Contains("  kafka.brokrs: unknown key; did you mean 'brokers'? [line 2]", lines);
    }

    [Theory]
    [InlineData("kafka: { consumer_grop: g }", "kafka.consumer_grop", "unknown key; did you mean 'consumer_group'?")]
    [InlineData("executor: { max_executor: 3 }", "executor.max_executor", "unknown key; did you mean 'max_executors'?")]
    [InlineData("sinks: { postgress: {} }", "sinks.postgress", "unknown key; did you mean 'postgres'?")]
    [InlineData("excutor: {}", "excutor", "unknown key; did you mean 'executor'?")]
    [InlineData("executor: { timeout: 3 }", "executor.timeout", "unknown key (known keys: binary_path, env, env_inherit_parent, env_inherit_deny, max_executors, task_timeout_seconds, window_size, max_retries, retry_backoff_ms, retry_backoff_max_ms, drain_timeout_seconds, backpressure_high_multiplier, backpressure_low_multiplier, max_output_bytes, mode, process_args, ready_timeout_seconds, max_tasks_per_process, max_rss_mb, restart_backoff_ms, restart_backoff_max_ms)")]
    public void Unknown_keys_are_errors_with_a_suggestion_when_one_is_close(string yaml, string path, string message)
    {
        var problem = Assert.Single(LoadFails(yaml).Problems);

        Assert.Equal((path, message), (problem.Path, problem.Message));
    }

    [Theory]
    // A task timeout of a year: .NET's timers take at most about 49.7 days, and the timer built after each task's
    // process had started threw.
    [InlineData("executor: { task_timeout_seconds: 31536000 }", "executor.task_timeout_seconds",
        "must be ≤ 4294967 (about 49.7 days, the longest delay a timer takes) (got 31536000)")]
    [InlineData("sinks: { http: { hook: { url: \"http://h/\", timeout_seconds: 5000000 } } }", "sinks.http.hook.timeout_seconds",
        "must be ≤ 2147483 (got 5000000)")]
    // Within the timers' limit, but HttpClient takes at most int.MaxValue ms: the sink failed when it connected.
    [InlineData("sinks: { http: { hook: { url: \"http://h/\", timeout_seconds: 3000000 } } }", "sinks.http.hook.timeout_seconds",
        "must be ≤ 2147483 (got 3000000)")]
    [InlineData("cache: { enabled: true, db_dir: /tmp, flush_interval_seconds: 1e7 }", "cache.flush_interval_seconds",
        "must be ≤ 4294967 (about 49.7 days, the longest delay a timer takes) (got 10000000)")]
    // An interval a timer reads as zero: the cache's flush loop spun.
    [InlineData("cache: { enabled: true, db_dir: /tmp, flush_interval_seconds: 1e-9 }", "cache.flush_interval_seconds", "must be ≥ 0.001 (got 1E-09)")]
    [InlineData("cache: { enabled: true, db_dir: /tmp, peer_sync: { enabled: true, interval_seconds: 0.0001 } }", "cache.peer_sync.interval_seconds",
        "must be ≥ 0.001 (got 0.0001)")]
    // A retention of a few billion hours is before the first date.
    [InlineData("debug: { retention_hours: 2000000000 }", "debug.retention_hours", "must be ≤ 876000 (100 years) (got 2000000000)")]
    // A number of hours, not built as the other *_hours keys are: every cache cleanup threw before it purged anything.
    [InlineData("cache: { enabled: true, db_dir: /tmp, stale_file_hours: 1e8 }", "cache.stale_file_hours", "must be ≤ 876000 (100 years) (got 100000000)")]
    public void Durations_a_timer_or_a_date_cannot_hold_are_errors_naming_the_key(string yaml, string path, string message)
    {
        var problem = ProblemAt(LoadFails(yaml), path);

        Assert.Equal(message, problem.Message);
    }

    [Theory]
    [InlineData("http://169.254.169.254/latest/meta-data", "169.254.169.254")]
    [InlineData("http://100.100.100.200/", "100.100.100.200")]
    [InlineData("https://192.0.0.192/opc/v2", "192.0.0.192")]
    [InlineData("http://Metadata.Google.Internal/computeMetadata/v1", "metadata.google.internal")]
    [InlineData("http://metadata.packet.net./metadata", "metadata.packet.net")]
    [InlineData("http://2852039166/", "169.254.169.254")]
    [InlineData("http://[::ffff:169.254.169.254]/", "169.254.169.254")]
    [InlineData("http://169.254.170.2/v2/credentials", "169.254.170.2")]
    [InlineData("http://169.254.1.1/", "169.254.1.1")]
    [InlineData("http://[fd00:ec2::254]/latest", "fd00:ec2::254")]
    [InlineData("http://[fe80::1]/", "fe80::1")]
    public void Http_sinks_refuse_cloud_metadata_hosts(string url, string host)
    {
        var problem = ProblemAt(LoadFails($"sinks: {{ http: {{ hook: {{ url: \"{url}\" }} }} }}"), "sinks.http.hook.url");

        Assert.StartsWith($"host '{host}' is a cloud metadata endpoint", problem.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not a url", "must be an absolute http:// or https:// URL with a host (got 'not a url')")]
    [InlineData("https://user:pw@/path", "must be an absolute http:// or https:// URL with a host (got 'https://user:***@/path')")]
    [InlineData("https:///path", "must be an absolute http:// or https:// URL with a host (got 'https:///path')")]
    public void Http_sink_urls_need_a_scheme_and_a_host(string url, string message)
    {
        var problem = ProblemAt(LoadFails($"sinks: {{ http: {{ hook: {{ url: \"{url}\" }} }} }}"), "sinks.http.hook.url");

        Assert.Equal(message, problem.Message);
    }

    [Fact]
    public void Redis_and_mongo_urls_are_checked_and_shown_masked()
    {
        var error = LoadFails("""
            sinks:
              redis: { cache: { url: "http://u:hunter2@redis:6379" } }
              mongo: { docs: { uri: "localhost", database: d } }
            """);

        Assert.Equal("must be a redis:// or rediss:// or unix:// URL with a host (got 'http://u:***@redis:6379')",
            ProblemAt(error, "sinks.redis.cache.url").Message);
        Assert.StartsWith("must be a mongodb:// or mongodb+srv:// URL", ProblemAt(error, "sinks.mongo.docs.uri").Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_errors_mask_url_passwords_that_contain_question_marks_hashes_or_slashes()
    {
        var error = LoadFails("""
            sinks:
              redis: { cache: { url: "http://u:hun?ter#2@redis:6379" } }
              mongo: { docs: { uri: "mysql://admin:se/cr/et@mongo:27017", database: d } }
              http: { hook: { url: "https://u:pa?ss@/path" } }
            """);

        foreach (var secret in new[] { "hun?ter#2", "ter#2", "se/cr/et", "cr/et", "pa?ss" })
            Assert.DoesNotContain(secret, error.Message, StringComparison.Ordinal);
        Assert.Contains("'http://u:***@redis:6379'", ProblemAt(error, "sinks.redis.cache.url").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Http_sink_allow_loopback_binds_and_defaults_to_false()
    {
        var config = ConfigLoader.LoadFromYaml("""
            sinks:
              http:
                local: { url: "http://hooks.internal:8080/in", allow_loopback: true }
                remote: { url: "https://api.example.com/in" }
            """, Env());

        Assert.True(config.Sinks.Http["local"].AllowLoopback);
        Assert.False(config.Sinks.Http["remote"].AllowLoopback);
        Assert.Contains("allow_loopback: true", SecretMasker.ToMaskedYaml(config), StringComparison.Ordinal);
    }

    [Fact]
    public void Http_sink_limits_and_retries_are_range_checked_and_bound()
    {
        var error = LoadFails("""
            sinks:
              http:
                none: { url: "https://api.example.com/in", max_connections: 0, max_retries: -1, idempotency_key: maybe }
                many: { url: "https://api.example.com/in", max_connections: 1025, max_retries: 101 }
                twice: { url: "https://api.example.com/in", idempotency_key: true, headers: { idempotency-key: "abc" } }
            """);

        Assert.Equal("must be ≥ 1 (got 0)", ProblemAt(error, "sinks.http.none.max_connections").Message);
        Assert.Equal("must be ≥ 0 (got -1)", ProblemAt(error, "sinks.http.none.max_retries").Message);
        Assert.Equal("must be true or false (got 'maybe')", ProblemAt(error, "sinks.http.none.idempotency_key").Message);
        Assert.Equal("must be ≤ 1024 (got 1025)", ProblemAt(error, "sinks.http.many.max_connections").Message);
        Assert.Equal("must be ≤ 100 (got 101)", ProblemAt(error, "sinks.http.many.max_retries").Message);
        Assert.Equal("sets Idempotency-Key, which idempotency_key: true derives itself; remove one of the two",
            ProblemAt(error, "sinks.http.twice.headers").Message);

        var config = ConfigLoader.LoadFromYaml("""
            sinks:
              http:
                tuned: { url: "https://api.example.com/in", max_connections: 32, max_retries: 0, idempotency_key: true }
                plain: { url: "https://api.example.com/in" }
            """, Env());
        Assert.Equal((32, 0, true), (config.Sinks.Http["tuned"].MaxConnections, config.Sinks.Http["tuned"].MaxRetries, config.Sinks.Http["tuned"].IdempotencyKey));
        Assert.Equal((8, 3, false), (config.Sinks.Http["plain"].MaxConnections, config.Sinks.Http["plain"].MaxRetries, config.Sinks.Http["plain"].IdempotencyKey));
        Assert.Contains("max_connections: 32", SecretMasker.ToMaskedYaml(config), StringComparison.Ordinal);
    }

    [Fact]
    public void Cross_key_rules_are_enforced()
    {
        var error = LoadFails("""
            sinks:
              postgres:
                main: { dsn: "Host=db", pool_min: 5, pool_max: 2, on_conflict: [id] }
                bad: { dsn: "Host=db", mode: upsert, on_conflict: ["id; drop table x"] }
            cache: { peer_sync: { interval_seconds: 5, cycle_deadline_seconds: 5 } }
            """);

        Assert.Equal("must be ≤ pool_max (2) (got 5)", ProblemAt(error, "sinks.postgres.main.pool_min").Message);
        Assert.Equal("is only used with mode 'upsert' (mode is 'insert')", ProblemAt(error, "sinks.postgres.main.on_conflict").Message);
        Assert.StartsWith("'id; drop table x' is not a valid column name", ProblemAt(error, "sinks.postgres.bad.on_conflict").Message, StringComparison.Ordinal);
        Assert.Equal("must be < interval_seconds (5) (got 5)", ProblemAt(error, "cache.peer_sync.cycle_deadline_seconds").Message);
    }

    [Theory]
    [InlineData("kafka: { commit_interval_ms: -1 }", "kafka.commit_interval_ms", "must be ≥ 0 (got -1)")]
    [InlineData("executor: { max_retries: -1 }", "executor.max_retries", "must be ≥ 0 (got -1)")]
    [InlineData("debug: { retention_max_events: 99 }", "debug.retention_max_events", "must be ≥ 100 (got 99)")]
    [InlineData("debug: { max_buffer: 999 }", "debug.max_buffer", "must be ≥ 1000 (got 999)")]
    [InlineData("debug: { auth_token: '   ' }", "debug.auth_token", "is only whitespace, which would turn authentication off: give a token, or leave it empty for none")]
    [InlineData("cache: { flush_interval_seconds: 0 }", "cache.flush_interval_seconds", "must be ≥ 0.001 (got 0)")]
    [InlineData("cache: { max_memory_entries: 0 }", "cache.max_memory_entries", "must be ≥ 1 or null (got 0)")]
    [InlineData("cache: { cleanup_interval_seconds: 1800, stale_file_hours: 1 }", "cache.stale_file_hours",
        "must be > 2 × cleanup_interval_seconds (1800 s), or a running worker's file could be deleted (got 1 h)")]
    [InlineData("debug: { host: vm }", "debug.host", "must be an IP address to listen on or localhost, e.g. 0.0.0.0 (every interface) or 127.0.0.1 (got 'vm')")]
    [InlineData("debug: { db_dir: '' }\ncache: { enabled: true }", "cache.db_dir", "must name a directory when cache.enabled is true and debug.db_dir is empty (the cache's file needs one; an empty debug.db_dir only keeps the recorder in memory)")]
    [InlineData("debug: { enabled: true, port: 9099 }\nmetrics: { port: 9099 }", "debug.port",
        "must differ from metrics.port (9099): the debug UI and the metrics endpoint each listen on a port of their own")]
    [InlineData("cache: { stale_file_hours: -1 }", "cache.stale_file_hours", "must be ≥ 0.01 or null (got -1)")]
    [InlineData("cache: { peer_sync: { cycle_deadline_seconds: 0.05 } }", "cache.peer_sync.cycle_deadline_seconds", "must be ≥ 0.1 or null (got 0.05)")]
    [InlineData("sinks: { circuit_breaker: { failure_threshold: 0 } }", "sinks.circuit_breaker.failure_threshold", "must be ≥ 1 (got 0)")]
    [InlineData("executor: { binary_path: '' }", "executor.binary_path", "must not be empty (leave it out, or null, when tasks name their own binary)")]
    [InlineData("executor: { env_inherit_parent: maybe }", "executor.env_inherit_parent", "must be true or false (got 'maybe')")]
    [InlineData("executor: { window_size: 1.5 }", "executor.window_size", "must be a whole number (got '1.5')")]
    [InlineData("executor: { window_size: }", "executor.window_size", "must be a whole number, got null")]
    [InlineData("executor: { env_inherit_deny: DK_* }", "executor.env_inherit_deny", "must be a list, got 'DK_*'")]
    [InlineData("kafka: [a, b]", "kafka", "must be a mapping of keys, got a list")]
    [InlineData("logging: { level: loud }", "logging.level", "must be one of TRACE, DEBUG, INFO, WARNING, WARN, ERROR, CRITICAL (got 'loud')")]
    [InlineData("sinks: { http: { hook: { url: 'https://h.example', method: FETCH } } }", "sinks.http.hook.method", "must be one of POST, PUT, PATCH, DELETE, GET (got 'FETCH')")]
    [InlineData("sinks: { http: { hook: { url: 'https://h.example', allow_loopback: sometimes } } }", "sinks.http.hook.allow_loopback", "must be true or false (got 'sometimes')")]
    [InlineData("sinks: { postgres: { main: { dsn: 'postgresql://app:secret@db:54x2/app' } } }", "sinks.postgres.main.dsn",
        "is not a usable Npgsql connection string or postgresql:// URI: the URI's Port '54x2' is not valid: Couldn't set Port (Parameter 'Port')")]
    [InlineData("sinks: { postgres: { main: { dsn: 'postgresql://app:secret@db:554320/app' } } }", "sinks.postgres.main.dsn",
        "is not a usable Npgsql connection string or postgresql:// URI: the port 554320 is not between 1 and 65535")]
    [InlineData("sinks: { postgres: { main: { dsn: 'Host=db;Port=70000;Username=app' } } }", "sinks.postgres.main.dsn",
        "is not a usable Npgsql connection string or postgresql:// URI: the port 70000 is not between 1 and 65535")]
    [InlineData("sinks: { redis: { cache: { url: 'redis://127.0.0.1:6380/0?abortConnect=false' } } }", "sinks.redis.cache.url",
        "unknown query parameter 'abortConnect'; only ?db=N is understood (credentials go before the host, TLS is the rediss:// scheme, " +
        "client options such as abortConnect are Drakkar's own)")]
    [InlineData("sinks: { redis: { cache: { url: 'redis://cache', endpoints: ['not an endpoint:'] } } }", "sinks.redis.cache.endpoints",
        "'not an endpoint:' is not host:port")]
    [InlineData("sinks: { redis: { cache: { url: 'redis://127.0.0.1:580800' } } }", "sinks.redis.cache.url",
        "must be a redis:// or rediss:// or unix:// URL with a host (got 'redis://127.0.0.1:580800'): its port 580800 is not between 1 and 65535")]
    [InlineData("sinks: { http: { hook: { url: 'http://127.0.0.1:580800/results' } } }", "sinks.http.hook.url",
        "must be an absolute http:// or https:// URL with a host (got 'http://127.0.0.1:580800/results'): its port 580800 is not between 1 and 65535")]
    [InlineData("sinks: { http: { hook: { url: 'http://u:p@host:80a/x' } } }", "sinks.http.hook.url",
        "must be an absolute http:// or https:// URL with a host (got 'http://u:***@host:80a/x'): its port '80a' is not a number")]
    public void Values_out_of_range_or_of_the_wrong_type_are_reported(string yaml, string path, string message)
    {
        var problem = Assert.Single(LoadFails(yaml).Problems);

        Assert.Equal((path, message), (problem.Path, problem.Message));
    }

    [Fact]
    public void Invalid_yaml_is_one_problem_with_its_position()
    {
        var error = LoadFails("kafka:\n  brokers: [unclosed\nexecutor: {}\n");

        var problem = Assert.Single(error.Problems);
        Assert.StartsWith("not valid YAML", problem.Message, StringComparison.Ordinal);
        Assert.Contains("line 2", problem.Source, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_keys_are_reported()
    {
        var error = LoadFails("kafka:\n  brokers: a:1\n  brokers: b:2\n");

        Assert.Equal("duplicate key (the later value would silently win)", ProblemAt(error, "kafka.brokers").Message);
    }

    [Fact]
    public void The_top_level_must_be_a_mapping()
    {
        var problem = Assert.Single(LoadFails("- kafka\n- executor\n").Problems);

        Assert.StartsWith("the top level must be a mapping", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Delivery_engine_and_dlq_size_keys_are_range_checked_and_bound()
    {
        var error = LoadFails("""
            sinks:
              max_inflight_payloads: 0
              kafka:
                results: { topic: out, batch_size: 0, linger_ms: -1 }
              http:
                hook: { url: "https://api.example.com/in", batch_size: 100001 }
            dlq: { max_message_bytes: 1000 }
            """);

        Assert.Equal("must be ≥ 1 (got 0)", ProblemAt(error, "sinks.max_inflight_payloads").Message);
        Assert.Contains("got 0", ProblemAt(error, "sinks.kafka.results.batch_size").Message);
        Assert.Contains("got -1", ProblemAt(error, "sinks.kafka.results.linger_ms").Message);
        Assert.Contains("got 100001", ProblemAt(error, "sinks.http.hook.batch_size").Message);
        Assert.Contains("got 1000", ProblemAt(error, "dlq.max_message_bytes").Message);

        var config = ConfigLoader.LoadFromYaml("""
            sinks:
              max_inflight_payloads: 500
              kafka:
                results: { topic: out, batch_size: 250, linger_ms: 5 }
              http:
                hook: { url: "https://api.example.com/in", on_outage: dlq }
            dlq: { max_message_bytes: 200000 }
            """, Env());
        Assert.Equal(OutagePolicy.Dlq, config.Sinks.Http["hook"].OnOutage);
        Assert.Equal(OutagePolicy.Pause, config.Sinks.Kafka["results"].OnOutage);
        Assert.Equal(500, config.Sinks.MaxInflightPayloads);
        Assert.Equal((250, 5), (config.Sinks.Kafka["results"].BatchSize, config.Sinks.Kafka["results"].LingerMs));
        Assert.Equal(100, config.Sinks.Http["hook"].BatchSize);
        Assert.Equal(200_000, config.Dlq.MaxMessageBytes);
        Assert.Equal(new Drakkar.Sinks.SinkBatching(250, TimeSpan.FromMilliseconds(5), 4, OutagePolicy.Pause) { AttemptTimeout = TimeSpan.FromSeconds(45) },
            Drakkar.Sinks.SinkRegistry.Batching(config.Sinks)("kafka", "results"));
    }

    [Fact]
    public void A_plugin_instance_has_the_delivery_keys_of_every_instance_checked_and_applied()
    {
        var error = LoadFails("""
            sinks:
              custom:
                s3:
                  archive: { bucket: b, batch_size: 0, on_outage: wait, attempt_timeout_seconds: -1, ui_url: "ftp://x" }
            """);
        Assert.Equal("must be ≥ 1 (got 0)", ProblemAt(error, "sinks.custom.s3.archive.batch_size").Message);
        Assert.StartsWith("must be one of", ProblemAt(error, "sinks.custom.s3.archive.on_outage").Message, StringComparison.Ordinal);
        Assert.Equal("must be > 0 (got -1)", ProblemAt(error, "sinks.custom.s3.archive.attempt_timeout_seconds").Message);
        Assert.NotNull(ProblemAt(error, "sinks.custom.s3.archive.ui_url"));

        var config = ConfigLoader.LoadFromYaml("""
            sinks:
              custom:
                s3:
                  archive: { bucket: b, batch_size: 10, linger_ms: 40, on_outage: dlq, attempt_timeout_seconds: 2 }
                  plain: { bucket: c }
            """, Env());
        var batching = Drakkar.Sinks.SinkRegistry.Batching(config.Sinks);
        Assert.Equal(new Drakkar.Sinks.SinkBatching(10, TimeSpan.FromMilliseconds(40), 1, OutagePolicy.Dlq) { AttemptTimeout = TimeSpan.FromSeconds(2) },
            batching("s3", "archive"));
        Assert.Equal(new Drakkar.Sinks.SinkBatching(100, TimeSpan.Zero, 1, OutagePolicy.Pause), batching("s3", "plain"));
        Assert.Equal(new Dictionary<string, string> { ["bucket"] = "b" }, config.Sinks.Custom["s3"]["archive"].Settings);
    }

    [Fact]
    public void Attempt_timeout_is_positive_bounded_and_reaches_the_delivery_engine()
    {
        var error = LoadFails("""
            sinks:
              postgres:
                main: { dsn: "Host=db", attempt_timeout_seconds: 0 }
              redis:
                cache: { attempt_timeout_seconds: 100000 }
            """);
        Assert.Equal("must be > 0 (got 0)", ProblemAt(error, "sinks.postgres.main.attempt_timeout_seconds").Message);
        Assert.Equal("must be ≤ 86400 (got 100000)", ProblemAt(error, "sinks.redis.cache.attempt_timeout_seconds").Message);

        var config = ConfigLoader.LoadFromYaml("""
            sinks:
              postgres:
                main: { dsn: "Host=db", attempt_timeout_seconds: 2.5 }
                replica: { dsn: "Host=db2" }
              kafka:
                results: { topic: out }
              http:
                hook: { url: "https://api.example.com/in" }
            """, Env());
        var batching = Drakkar.Sinks.SinkRegistry.Batching(config.Sinks);
        Assert.Equal(TimeSpan.FromSeconds(2.5), batching("postgres", "main").AttemptTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), batching("postgres", "replica").AttemptTimeout);
        Assert.Equal(TimeSpan.FromSeconds(45), batching("kafka", "results").AttemptTimeout);
        Assert.Equal(TimeSpan.FromSeconds(300), batching("http", "hook").AttemptTimeout);
        Assert.Equal(45.0, new MongoSinkConfig().AttemptTimeoutSeconds);
    }

    [Fact]
    public void Group_membership_and_outage_keys_are_checked_and_bound()
    {
        var error = LoadFails("""
            kafka: { group_protocol: kip848 }
            sinks:
              http:
                hook: { url: "https://api.example.com/in", on_outage: wait }
            """);
        Assert.Contains("kip848", ProblemAt(error, "kafka.group_protocol").Message);
        Assert.Contains("wait", ProblemAt(error, "sinks.http.hook.on_outage").Message);

        var config = ConfigLoader.LoadFromYaml("""
            kafka: { group_protocol: consumer, group_instance_id: worker-7 }
            """, Env());
        Assert.Equal("consumer", config.Kafka.GroupProtocol);
        Assert.Equal("worker-7", config.Kafka.GroupInstanceId);
        Assert.Equal("classic", new DrakkarConfig().Kafka.GroupProtocol);
        Assert.Equal("", new DrakkarConfig().Kafka.GroupInstanceId);
    }

    [Fact]
    public void Persistent_executor_keys_are_checked_and_bound()
    {
        var error = LoadFails("""
            executor:
              mode: pooled
              ready_timeout_seconds: 0
              max_tasks_per_process: -1
              max_rss_mb: -5
              restart_backoff_ms: -1
              process_args: "not-a-list"
            """);
        Assert.Contains("pooled", ProblemAt(error, "executor.mode").Message);
        Assert.Equal("must be ≥ 1 (got 0)", ProblemAt(error, "executor.ready_timeout_seconds").Message);
        Assert.Equal("must be ≥ 0 (got -1)", ProblemAt(error, "executor.max_tasks_per_process").Message);
        Assert.Equal("must be ≥ 0 (got -5)", ProblemAt(error, "executor.max_rss_mb").Message);
        Assert.Contains("got -1", ProblemAt(error, "executor.restart_backoff_ms").Message);
        Assert.NotNull(ProblemAt(error, "executor.process_args"));

        var backwards = LoadFails("executor: { restart_backoff_ms: 500, restart_backoff_max_ms: 200 }");
        Assert.Equal("must be ≥ restart_backoff_ms (500) (got 200)", ProblemAt(backwards, "executor.restart_backoff_max_ms").Message);

        var config = ConfigLoader.LoadFromYaml("""
            executor:
              mode: persistent
              binary_path: python3
              process_args: [child.py, --fast]
              ready_timeout_seconds: 5
              max_tasks_per_process: 1000
              max_rss_mb: 512
              restart_backoff_ms: 50
              restart_backoff_max_ms: 2000
            """, Env());
        Assert.Equal(ExecutorMode.Persistent, config.Executor.Mode);
        Assert.Equal(["child.py", "--fast"], config.Executor.ProcessArgs);
        Assert.Equal((5, 1000, 512), (config.Executor.ReadyTimeoutSeconds, config.Executor.MaxTasksPerProcess, config.Executor.MaxRssMb));
        Assert.Equal((50, 2000), (config.Executor.RestartBackoffMs, config.Executor.RestartBackoffMaxMs));

        var defaults = new DrakkarConfig().Executor;
        Assert.Equal(ExecutorMode.Spawn, defaults.Mode);
        Assert.Empty(defaults.ProcessArgs);
        Assert.Equal((30, 0, 0, 100, 10_000), (defaults.ReadyTimeoutSeconds, defaults.MaxTasksPerProcess, defaults.MaxRssMb, defaults.RestartBackoffMs, defaults.RestartBackoffMaxMs));
    }

    [Fact]
    public void Retry_backoff_keys_of_executor_and_sinks_are_range_checked_ordered_and_reach_the_retry_waits()
    {
        var error = LoadFails("""
            executor: { retry_backoff_ms: -1, retry_backoff_max_ms: 700000 }
            sinks: { retry_backoff_ms: 800, retry_backoff_max_ms: 100 }
            """);
        Assert.Equal("must be ≥ 0 (got -1)", ProblemAt(error, "executor.retry_backoff_ms").Message);
        Assert.Equal("must be ≤ 600000 (got 700000)", ProblemAt(error, "executor.retry_backoff_max_ms").Message);
        Assert.Equal("must be ≥ retry_backoff_ms (800) (got 100)", ProblemAt(error, "sinks.retry_backoff_max_ms").Message);

        var config = ConfigLoader.LoadFromYaml("""
            executor: { retry_backoff_ms: 50, retry_backoff_max_ms: 400 }
            sinks: { retry_backoff_ms: 0, retry_backoff_max_ms: 0 }
            """, Env());
        var executor = Drakkar.Pipeline.PipelineSettings.From(config.Executor).RetryBackoff!;
        Assert.Equal([50, 100, 200, 400, 400], Enumerable.Range(1, 5).Select(n => executor.Nominal(n).TotalMilliseconds));
        Assert.Equal(TimeSpan.Zero, Drakkar.Sinks.SinkManager.RetryBackoffOf(config).Before(1, Random.Shared));

        var defaults = new DrakkarConfig();
        Assert.Equal((500, 30_000, 500, 30_000),
            (defaults.Executor.RetryBackoffMs, defaults.Executor.RetryBackoffMaxMs, defaults.Sinks.RetryBackoffMs, defaults.Sinks.RetryBackoffMaxMs));
    }

    [Fact]
    public void Exactly_once_refuses_every_sink_that_is_not_kafka_naming_each_and_a_kafka_sink_on_another_cluster()
    {
        var error = LoadFails("""
            kafka: { brokers: "k1:9092", exactly_once: true }
            sinks:
              kafka:
                results: { topic: out }
                mirror: { topic: out, brokers: "other:9092" }
              postgres:
                main: { dsn: "Host=db;Username=app;Password=hunter2;Database=app" }
              filesystem:
                results: { base_path: /tmp }
              custom:
                webhook:
                  audit: { url: "https://example.com" }
            """);
        var problem = ProblemAt(error, "kafka.exactly_once").Message;
        Assert.Contains("sinks.postgres.main, sinks.filesystem.results, sinks.custom.webhook.audit are not", problem);
        Assert.DoesNotContain("sinks.kafka", problem);
        Assert.Contains("one transaction spans one cluster", ProblemAt(error, "sinks.kafka.mirror.brokers").Message);
        Assert.DoesNotContain(error.Problems, p => p.Path == "sinks.kafka.results.brokers");
    }

    [Fact]
    public void Exactly_once_is_off_by_default_and_binds_with_only_kafka_sinks_on_the_source_cluster()
    {
        Assert.False(new DrakkarConfig().Kafka.ExactlyOnce);
        var config = ConfigLoader.LoadFromYaml("""
            kafka: { brokers: "k1:9092", exactly_once: true }
            sinks:
              kafka:
                results: { topic: out }
                alerts: { topic: alerts, brokers: "k1:9092" }
            """, Env());
        Assert.True(config.Kafka.ExactlyOnce);

        // Without exactly_once the same mix of sinks is fine.
        ConfigLoader.LoadFromYaml("""
            kafka: { brokers: "k1:9092" }
            sinks:
              kafka: { mirror: { topic: out, brokers: "other:9092" } }
              filesystem: { results: { base_path: /tmp } }
            """, Env());
        Assert.Contains("true or false", ProblemAt(LoadFails("kafka: { exactly_once: sometimes }"), "kafka.exactly_once").Message);
    }

    [Fact]
    public void Under_the_classic_protocol_the_heartbeat_must_be_below_the_session()
    {
        // A short session with the default heartbeat (3000): the worker would be evicted between heartbeats.
        var shortSession = ProblemAt(LoadFails("kafka: { session_timeout_ms: 3000 }"), "kafka.session_timeout_ms").Message;
        Assert.Contains("heartbeat_interval_ms (3000) must be below session_timeout_ms (3000)", shortSession);
        Assert.Contains("set heartbeat_interval_ms too", shortSession);
        // The heartbeat given: the problem points at it.
        var slowHeartbeat = ProblemAt(LoadFails("kafka: { heartbeat_interval_ms: 50000 }"), "kafka.heartbeat_interval_ms").Message;
        Assert.Contains("must be below session_timeout_ms (45000)", slowHeartbeat);

        Assert.Equal(500, ConfigLoader.LoadFromYaml("kafka: { session_timeout_ms: 3000, heartbeat_interval_ms: 500 }", Env()).Kafka.HeartbeatIntervalMs);
        // KIP-848: both are the broker's, not used by the worker.
        Assert.Equal(3000, ConfigLoader.LoadFromYaml("kafka: { group_protocol: consumer, session_timeout_ms: 3000 }", Env()).Kafka.SessionTimeoutMs);
    }

    /// <summary>
    /// group_protocol is accepted in any case, but only "consumer" in lower case ran KIP-848: "Consumer" passed the
    /// checks and then ran the classic protocol (and got the classic heartbeat check).
    /// </summary>
    [Theory]
    [InlineData("Consumer")]
    [InlineData("CONSUMER")]
    [InlineData(" consumer ")]
    public void The_consumer_protocol_is_the_consumer_protocol_in_any_case(string written)
    {
        var config = ConfigLoader.LoadFromYaml($"kafka: {{ group_protocol: '{written}', session_timeout_ms: 3000 }}", Env());

        Assert.True(config.Kafka.UsesConsumerProtocol);
        Assert.Equal(["kafka.session_timeout_ms (3000) has no effect under group_protocol: consumer; the broker's group.consumer.session.timeout.ms applies"],
            Drakkar.Configuration.ConfigAdvisories.Of(config));
    }

    [Fact]
    public void Kafka_security_keys_are_checked_and_reach_every_client_configuration()
    {
        var missing = LoadFails("""
            kafka: { security_protocol: sasl_ssl }
            """);
        Assert.Contains("SCRAM-SHA-512", ProblemAt(missing, "kafka.sasl_mechanism").Message);
        ProblemAt(missing, "kafka.sasl_username");
        ProblemAt(missing, "kafka.sasl_password");
        var wrong = LoadFails("""
            kafka: { security_protocol: tls, sasl_mechanism: GSSAPI, sasl_username: app, ssl_ca_location: /etc/ca.pem }
            """);
        var certificateWithoutTls = LoadFails("""
            kafka: { ssl_certificate_location: /etc/client.pem, ssl_key_location: /etc/client.key, ssl_key_password: k3y-pass }
            """);
        foreach (var key in new[] { "ssl_certificate_location", "ssl_key_location", "ssl_key_password" })
            Assert.Contains("ssl or sasl_ssl", ProblemAt(certificateWithoutTls, $"kafka.{key}").Message);
        Assert.Contains("tls", ProblemAt(wrong, "kafka.security_protocol").Message);
        Assert.Contains("GSSAPI", ProblemAt(wrong, "kafka.sasl_mechanism").Message);
        Assert.Contains("sasl_plaintext or sasl_ssl", ProblemAt(wrong, "kafka.sasl_username").Message);
        Assert.Contains("ssl or sasl_ssl", ProblemAt(wrong, "kafka.ssl_ca_location").Message);

        var config = ConfigLoader.LoadFromYaml("""
            kafka:
              security_protocol: sasl_ssl
              sasl_mechanism: SCRAM-SHA-512
              sasl_username: app
              sasl_password: s3cret-pass
              ssl_ca_location: /etc/kafka/ca.pem
              ssl_certificate_location: /etc/kafka/client.pem
              ssl_key_location: /etc/kafka/client.key
              ssl_key_password: k3y-pass
              ssl_verify_hostname: false
            """, Env());
        var client = Drakkar.Kafka.KafkaSecurity.Apply(new Confluent.Kafka.ProducerConfig(), config.Kafka);
        Assert.Equal(Confluent.Kafka.SecurityProtocol.SaslSsl, client.SecurityProtocol);
        Assert.Equal(Confluent.Kafka.SaslMechanism.ScramSha512, client.SaslMechanism);
        Assert.Equal(("app", "s3cret-pass", "/etc/kafka/ca.pem"), (client.SaslUsername, client.SaslPassword, client.SslCaLocation));
        Assert.Equal(("/etc/kafka/client.pem", "/etc/kafka/client.key", "k3y-pass"), (client.SslCertificateLocation, client.SslKeyLocation, client.SslKeyPassword));
        Assert.Equal(Confluent.Kafka.SslEndpointIdentificationAlgorithm.None, client.SslEndpointIdentificationAlgorithm);
        Assert.Equal(Confluent.Kafka.SecurityProtocol.Plaintext, Drakkar.Kafka.KafkaSecurity.Apply(new Confluent.Kafka.ConsumerConfig(), new DrakkarConfig().Kafka).SecurityProtocol);
        Assert.Contains("sasl_password: \"***\"", SecretMasker.ToMaskedYaml(config), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("max_poll_records", "100")]
    [InlineData("startup_align_enabled", "false")]
    [InlineData("startup_min_wait_seconds", "4.0")]
    [InlineData("startup_align_interval_seconds", "10")]
    public void Drakkar_kafka_keys_without_a_meaning_here_are_refused_by_name_as_not_supported(string key, string value)
    {
        var error = LoadFails($"kafka: {{ {key}: {value} }}");

        var problem = Assert.Single(error.Problems);
        Assert.Equal($"kafka.{key}", problem.Path);
        Assert.StartsWith("is not supported by Drakkar for .NET: ", problem.Message, StringComparison.Ordinal);
        Assert.EndsWith("; remove it", problem.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(key, SecretMasker.ToMaskedYaml(ConfigLoader.LoadFromYaml("", Env())), StringComparison.Ordinal);
    }
}
