using Drakkar.Sinks;
using static Drakkar.Configuration.ConfigRules;
using static Drakkar.Configuration.ScalarTypes;
using KafkaSecurity = Drakkar.Kafka.KafkaSecurity;

namespace Drakkar.Configuration;

/// <summary>
/// Every key Drakkar reads, with its type and range (Drakkar's <c>Field(ge=…, le=…)</c> bounds, plus a few this port
/// needs: <c>max_output_bytes ≥ 1024</c>, <c>commit_interval_ms ≥ 0</c>, Kafka timings ≥ 1, and cross-key rules).
/// </summary>
internal static class DrakkarConfigSchema
{
    private static ScalarField<T, string> Str<T>(string key, Func<T, string> get, Action<T, string> set, params Func<string, string?>[] rules)
        where T : class => new(key, get, set, Text, rules);

    private static ScalarField<T, int> Int<T>(string key, Func<T, int> get, Action<T, int> set, params Func<int, string?>[] rules)
        where T : class => new(key, get, set, Integer, rules);

    private static ScalarField<T, double> Num<T>(string key, Func<T, double> get, Action<T, double> set, params Func<double, string?>[] rules)
        where T : class => new(key, get, set, Number, rules);

    private static ScalarField<T, bool> Bool<T>(string key, Func<T, bool> get, Action<T, bool> set)
        where T : class => new(key, get, set, TrueFalse);

    private static ScalarField<T, string> UiUrl<T>(Func<T, string> get, Action<T, string> set)
        where T : class => Str("ui_url", get, set);

    /// <summary>The keys every sink instance has (<see cref="SinkInstanceConfig"/>) after its own.</summary>
    private static ConfigField<T>[] Instance<T>(params ConfigField<T>[] own) where T : SinkInstanceConfig =>
    [
        .. own,
        Int<T>("batch_size", c => c.BatchSize, (c, v) => c.BatchSize = v, Between(1, 100_000)),
        Int<T>("linger_ms", c => c.LingerMs, (c, v) => c.LingerMs = v, Between(0, 60_000)),
        new ScalarField<T, OutagePolicy>("on_outage", c => c.OnOutage, (c, v) => c.OnOutage = v,
            new Choice<OutagePolicy>(("pause", OutagePolicy.Pause), ("dlq", OutagePolicy.Dlq))),
        UiUrl<T>(c => c.UiUrl, (c, v) => c.UiUrl = v),
    ];

    private static readonly string[] LogLevels = ["TRACE", "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"];
    private static readonly string[] GroupProtocols = ["classic", "consumer"];
    private static readonly string[] HttpMethods = ["POST", "PUT", "PATCH", "DELETE", "GET"];

    private const string StartupAlignReason =
        "workers join the group as soon as they are ready; a joining member moves only the partitions it takes " +
        "(cooperative-sticky, or KIP-848 with group_protocol: consumer), so delaying joins to a wall-clock boundary " +
        "would only add seconds to every start (see docs/operations.md, scaling and rolling restarts)";

    public static readonly ObjectSpec<KafkaConfig> Kafka = new(
    [
        Str<KafkaConfig>("brokers", c => c.Brokers, (c, v) => c.Brokers = v, NotEmpty),
        Str<KafkaConfig>("source_topic", c => c.SourceTopic, (c, v) => c.SourceTopic = v, NotEmpty),
        Str<KafkaConfig>("consumer_group", c => c.ConsumerGroup, (c, v) => c.ConsumerGroup = v, NotEmpty),
        new UnsupportedField<KafkaConfig>("max_poll_records",
            "records are handed to the partition queues one at a time with backpressure checked after each, and " +
            "executor.window_size sets how many reach Arrange at once (librdkafka's prefetch is bounded by the worker)"),
        Int<KafkaConfig>("max_poll_interval_ms", c => c.MaxPollIntervalMs, (c, v) => c.MaxPollIntervalMs = v, AtLeast(1)),
        Int<KafkaConfig>("session_timeout_ms", c => c.SessionTimeoutMs, (c, v) => c.SessionTimeoutMs = v, AtLeast(1)),
        Int<KafkaConfig>("heartbeat_interval_ms", c => c.HeartbeatIntervalMs, (c, v) => c.HeartbeatIntervalMs = v, AtLeast(1)),
        new ScalarField<KafkaConfig, string>("group_protocol", c => c.GroupProtocol, (c, v) => c.GroupProtocol = v, Text, OneOf(GroupProtocols)),
        Str<KafkaConfig>("group_instance_id", c => c.GroupInstanceId, (c, v) => c.GroupInstanceId = v),
        Int<KafkaConfig>("commit_interval_ms", c => c.CommitIntervalMs, (c, v) => c.CommitIntervalMs = v, AtLeast(0)),
        Bool<KafkaConfig>("exactly_once", c => c.ExactlyOnce, (c, v) => c.ExactlyOnce = v),
        Str<KafkaConfig>("security_protocol", c => c.SecurityProtocol, (c, v) => c.SecurityProtocol = v, OneOf(KafkaSecurity.Protocols)),
        Str<KafkaConfig>("sasl_mechanism", c => c.SaslMechanism, (c, v) => c.SaslMechanism = v, value => value.Length == 0 ? null : OneOf(KafkaSecurity.Mechanisms)(value)),
        Str<KafkaConfig>("sasl_username", c => c.SaslUsername, (c, v) => c.SaslUsername = v),
        new ScalarField<KafkaConfig, string>("sasl_password", c => c.SaslPassword, (c, v) => c.SaslPassword = v, Text) { FullyMasked = true },
        Str<KafkaConfig>("ssl_ca_location", c => c.SslCaLocation, (c, v) => c.SslCaLocation = v),
        Str<KafkaConfig>("ssl_certificate_location", c => c.SslCertificateLocation, (c, v) => c.SslCertificateLocation = v),
        Str<KafkaConfig>("ssl_key_location", c => c.SslKeyLocation, (c, v) => c.SslKeyLocation = v),
        new ScalarField<KafkaConfig, string>("ssl_key_password", c => c.SslKeyPassword, (c, v) => c.SslKeyPassword = v, Text) { FullyMasked = true },
        Bool<KafkaConfig>("ssl_verify_hostname", c => c.SslVerifyHostname, (c, v) => c.SslVerifyHostname = v),
        UiUrl<KafkaConfig>(c => c.UiUrl, (c, v) => c.UiUrl = v),
        Str<KafkaConfig>("ui_cluster_name", c => c.UiClusterName, (c, v) => c.UiClusterName = v),
        new UnsupportedField<KafkaConfig>("startup_align_enabled", StartupAlignReason),
        new UnsupportedField<KafkaConfig>("startup_min_wait_seconds", StartupAlignReason),
        new UnsupportedField<KafkaConfig>("startup_align_interval_seconds", StartupAlignReason),
    ],
    (kafka, check) =>
    {
        // No key without an effect (C5): SASL keys need a sasl_* protocol, TLS files a protocol that speaks TLS.
        if (KafkaSecurity.UsesSasl(kafka))
        {
            Require(check, "sasl_mechanism", kafka.SaslMechanism, $"one of {string.Join(", ", KafkaSecurity.Mechanisms)} with security_protocol {kafka.SecurityProtocol}");
            Require(check, "sasl_username", kafka.SaslUsername, $"the SASL user with security_protocol {kafka.SecurityProtocol}");
            Require(check, "sasl_password", kafka.SaslPassword, "the SASL password, e.g. ${KAFKA_PASSWORD}");
        }
        else
        {
            foreach (var (key, value) in new[] { ("sasl_mechanism", kafka.SaslMechanism), ("sasl_username", kafka.SaslUsername), ("sasl_password", kafka.SaslPassword) })
                if (value.Length > 0) check.Fail(key, $"is only used with security_protocol sasl_plaintext or sasl_ssl (it is '{kafka.SecurityProtocol}')");
        }
        if (!KafkaSecurity.UsesTls(kafka))
        {
            foreach (var (key, value) in new[] { ("ssl_ca_location", kafka.SslCaLocation), ("ssl_certificate_location", kafka.SslCertificateLocation),
                         ("ssl_key_location", kafka.SslKeyLocation), ("ssl_key_password", kafka.SslKeyPassword) })
                if (value.Length > 0) check.Fail(key, $"is only used with security_protocol ssl or sasl_ssl (it is '{kafka.SecurityProtocol}')");
        }
    });

    public static readonly ObjectSpec<ExecutorConfig> Executor = new(
    [
        new ScalarField<ExecutorConfig, string?>("binary_path", c => c.BinaryPath, (c, v) => c.BinaryPath = v, OptionalText, NotEmptyOrNull),
        new StringMapField<ExecutorConfig>("env", c => c.Env),
        Bool<ExecutorConfig>("env_inherit_parent", c => c.EnvInheritParent, (c, v) => c.EnvInheritParent = v),
        new StringListField<ExecutorConfig>("env_inherit_deny", c => c.EnvInheritDeny, (c, v) => c.EnvInheritDeny = v),
        Int<ExecutorConfig>("max_executors", c => c.MaxExecutors, (c, v) => c.MaxExecutors = v, AtLeast(1)),
        Int<ExecutorConfig>("task_timeout_seconds", c => c.TaskTimeoutSeconds, (c, v) => c.TaskTimeoutSeconds = v, AtLeast(1)),
        Int<ExecutorConfig>("window_size", c => c.WindowSize, (c, v) => c.WindowSize = v, AtLeast(1)),
        Int<ExecutorConfig>("max_retries", c => c.MaxRetries, (c, v) => c.MaxRetries = v, AtLeast(0)),
        Int<ExecutorConfig>("retry_backoff_ms", c => c.RetryBackoffMs, (c, v) => c.RetryBackoffMs = v, Between(0, 600_000)),
        Int<ExecutorConfig>("retry_backoff_max_ms", c => c.RetryBackoffMaxMs, (c, v) => c.RetryBackoffMaxMs = v, Between(0, 600_000)),
        Int<ExecutorConfig>("drain_timeout_seconds", c => c.DrainTimeoutSeconds, (c, v) => c.DrainTimeoutSeconds = v, AtLeast(1)),
        Int<ExecutorConfig>("backpressure_high_multiplier", c => c.BackpressureHighMultiplier, (c, v) => c.BackpressureHighMultiplier = v, AtLeast(1)),
        Int<ExecutorConfig>("backpressure_low_multiplier", c => c.BackpressureLowMultiplier, (c, v) => c.BackpressureLowMultiplier = v, AtLeast(1)),
        Int<ExecutorConfig>("max_output_bytes", c => c.MaxOutputBytes, (c, v) => c.MaxOutputBytes = v, AtLeast(1024)),
        new ScalarField<ExecutorConfig, ExecutorMode>("mode", c => c.Mode, (c, v) => c.Mode = v,
            new Choice<ExecutorMode>(("spawn", ExecutorMode.Spawn), ("persistent", ExecutorMode.Persistent))),
        new StringListField<ExecutorConfig>("process_args", c => c.ProcessArgs, (c, v) => c.ProcessArgs = v),
        Int<ExecutorConfig>("ready_timeout_seconds", c => c.ReadyTimeoutSeconds, (c, v) => c.ReadyTimeoutSeconds = v, AtLeast(1)),
        Int<ExecutorConfig>("max_tasks_per_process", c => c.MaxTasksPerProcess, (c, v) => c.MaxTasksPerProcess = v, AtLeast(0)),
        Int<ExecutorConfig>("max_rss_mb", c => c.MaxRssMb, (c, v) => c.MaxRssMb = v, AtLeast(0)),
        Int<ExecutorConfig>("restart_backoff_ms", c => c.RestartBackoffMs, (c, v) => c.RestartBackoffMs = v, Between(0, 600_000)),
        Int<ExecutorConfig>("restart_backoff_max_ms", c => c.RestartBackoffMaxMs, (c, v) => c.RestartBackoffMaxMs = v, Between(0, 600_000)),
    ],
    (executor, check) =>
    {
        // Resuming above the pause threshold would flap pause/resume on every poll.
        if (executor.BackpressureLowMultiplier > executor.BackpressureHighMultiplier)
            check.Fail("backpressure_low_multiplier",
                $"must be ≤ backpressure_high_multiplier ({executor.BackpressureHighMultiplier}) (got {executor.BackpressureLowMultiplier})");
        if (executor.RestartBackoffMaxMs < executor.RestartBackoffMs)
            check.Fail("restart_backoff_max_ms",
                $"must be ≥ restart_backoff_ms ({executor.RestartBackoffMs}) (got {executor.RestartBackoffMaxMs})");
        CheckRetryBackoff(check, executor.RetryBackoffMs, executor.RetryBackoffMaxMs);
    });

    private static void CheckRetryBackoff(ObjectCheck check, int initialMs, int maxMs)
    {
        if (maxMs < initialMs) check.Fail("retry_backoff_max_ms", $"must be ≥ retry_backoff_ms ({initialMs}) (got {maxMs})");
    }

    private static readonly ObjectSpec<KafkaSinkConfig> KafkaSink = new(Instance(
    [
        Str<KafkaSinkConfig>("topic", c => c.Topic, (c, v) => c.Topic = v),
        Str<KafkaSinkConfig>("brokers", c => c.Brokers, (c, v) => c.Brokers = v),
        Bool<KafkaSinkConfig>("idempotent", c => c.Idempotent, (c, v) => c.Idempotent = v),
    ]),
    (sink, check) => Require(check, "topic", sink.Topic, "the topic this sink produces to"));

    private static readonly ObjectSpec<PostgresSinkConfig> PostgresSink = new(Instance(
    [
        Str<PostgresSinkConfig>("dsn", c => c.Dsn, (c, v) => c.Dsn = v),
        Int<PostgresSinkConfig>("pool_min", c => c.PoolMin, (c, v) => c.PoolMin = v, AtLeast(1)),
        Int<PostgresSinkConfig>("pool_max", c => c.PoolMax, (c, v) => c.PoolMax = v, AtLeast(1)),
        new ScalarField<PostgresSinkConfig, PostgresWriteMode>("mode", c => c.Mode, (c, v) => c.Mode = v,
            new Choice<PostgresWriteMode>(("insert", PostgresWriteMode.Insert), ("bulk", PostgresWriteMode.Bulk), ("upsert", PostgresWriteMode.Upsert))),
        new StringListField<PostgresSinkConfig>("on_conflict", c => c.OnConflict, (c, v) => c.OnConflict = v),
    ]),
    (sink, check) =>
    {
        Require(check, "dsn", sink.Dsn, "the connection string, e.g. Host=db;Username=app;Password=${PG_PASSWORD};Database=app");
        if (sink.PoolMin > sink.PoolMax)
            check.Fail("pool_min", $"must be ≤ pool_max ({sink.PoolMax}) (got {sink.PoolMin})");
        if (sink.Mode == PostgresWriteMode.Upsert && sink.OnConflict.Count == 0)
            check.Fail("on_conflict", "mode 'upsert' needs the conflict key columns, e.g. on_conflict: [request_id]");
        if (sink.Mode != PostgresWriteMode.Upsert && sink.OnConflict.Count > 0)
            check.Fail("on_conflict", $"is only used with mode 'upsert' (mode is '{sink.Mode.ToString().ToLowerInvariant()}')");
        foreach (var column in sink.OnConflict.Where(column => !IsSqlIdentifier(column)))
            check.Fail("on_conflict", $"'{column}' is not a valid column name (letters, digits and '_', not starting with a digit)");
    });

    private static readonly ObjectSpec<MongoSinkConfig> MongoSink = new(Instance(
    [
        Str<MongoSinkConfig>("uri", c => c.Uri, (c, v) => c.Uri = v, UrlWithScheme("mongodb", "mongodb+srv")),
        Str<MongoSinkConfig>("database", c => c.Database, (c, v) => c.Database = v),
    ]),
    (sink, check) =>
    {
        Require(check, "uri", sink.Uri, "the server address, e.g. mongodb://mongo:27017");
        Require(check, "database", sink.Database, "the database the collections live in");
    });

    private static readonly ObjectSpec<HttpSinkConfig> HttpSink = new(Instance(
    [
        Str<HttpSinkConfig>("url", c => c.Url, (c, v) => c.Url = v, HttpSinkUrl),
        new ScalarField<HttpSinkConfig, string>("method", c => c.Method, (c, v) => c.Method = v, Text, OneOf(HttpMethods))
        {
            Normalize = method => method.Trim().ToUpperInvariant(),
        },
        Int<HttpSinkConfig>("timeout_seconds", c => c.TimeoutSeconds, (c, v) => c.TimeoutSeconds = v, AtLeast(1)),
        new StringMapField<HttpSinkConfig>("headers", c => c.Headers),
        Int<HttpSinkConfig>("max_retries", c => c.MaxRetries, (c, v) => c.MaxRetries = v, Between(0, 100)),
        Int<HttpSinkConfig>("max_connections", c => c.MaxConnections, (c, v) => c.MaxConnections = v, Between(1, 1024)),
        Bool<HttpSinkConfig>("idempotency_key", c => c.IdempotencyKey, (c, v) => c.IdempotencyKey = v),
        Bool<HttpSinkConfig>("allow_loopback", c => c.AllowLoopback, (c, v) => c.AllowLoopback = v),
    ]),
    (sink, check) =>
    {
        Require(check, "url", sink.Url, "the endpoint payloads are sent to, e.g. https://api.example.com/events");
        if (sink.IdempotencyKey && sink.Headers.ContainsKey("Idempotency-Key"))
            check.Fail("headers", "sets Idempotency-Key, which idempotency_key: true derives itself; remove one of the two");
    });

    private static readonly ObjectSpec<RedisSinkConfig> RedisSink = new(Instance(
    [
        Str<RedisSinkConfig>("url", c => c.Url, (c, v) => c.Url = v, NotEmpty, UrlWithScheme("redis", "rediss", "unix")),
        Str<RedisSinkConfig>("key_prefix", c => c.KeyPrefix, (c, v) => c.KeyPrefix = v),
        new StringListField<RedisSinkConfig>("endpoints", c => c.Endpoints, (c, v) => c.Endpoints = v),
        Str<RedisSinkConfig>("sentinel_service", c => c.SentinelService, (c, v) => c.SentinelService = v),
        Str<RedisSinkConfig>("tls_ca_file", c => c.TlsCaFile, (c, v) => c.TlsCaFile = v),
    ]));

    private static readonly ObjectSpec<FileSinkConfig> FileSink = new(Instance(
    [
        Str<FileSinkConfig>("base_path", c => c.BasePath, (c, v) => c.BasePath = v),
    ]),
    (sink, check) => Require(check, "base_path", sink.BasePath, "the directory every written file must stay inside"));

    private static readonly ObjectSpec<CircuitBreakerConfig> CircuitBreaker = new(
    [
        Int<CircuitBreakerConfig>("failure_threshold", c => c.FailureThreshold, (c, v) => c.FailureThreshold = v, AtLeast(1)),
        Num<CircuitBreakerConfig>("cooldown_seconds", c => c.CooldownSeconds, (c, v) => c.CooldownSeconds = v, AtLeast(0.0)),
    ]);

    public static readonly ObjectSpec<SinksConfig> Sinks = new(
    [
        new InstancesField<SinksConfig, KafkaSinkConfig>("kafka", c => c.Kafka, () => new(), KafkaSink),
        new InstancesField<SinksConfig, PostgresSinkConfig>("postgres", c => c.Postgres, () => new(), PostgresSink),
        new InstancesField<SinksConfig, MongoSinkConfig>("mongo", c => c.Mongo, () => new(), MongoSink),
        new InstancesField<SinksConfig, HttpSinkConfig>("http", c => c.Http, () => new(), HttpSink),
        new InstancesField<SinksConfig, RedisSinkConfig>("redis", c => c.Redis, () => new(), RedisSink),
        new InstancesField<SinksConfig, FileSinkConfig>("filesystem", c => c.Filesystem, () => new(), FileSink),
        new CustomSinksField<SinksConfig>("custom", c => c.Custom),
        new SectionField<SinksConfig, CircuitBreakerConfig>("circuit_breaker", c => c.CircuitBreaker, CircuitBreaker),
        Int<SinksConfig>("max_inflight_payloads", c => c.MaxInflightPayloads, (c, v) => c.MaxInflightPayloads = v, AtLeast(1)),
        Int<SinksConfig>("retry_backoff_ms", c => c.RetryBackoffMs, (c, v) => c.RetryBackoffMs = v, Between(0, 600_000)),
        Int<SinksConfig>("retry_backoff_max_ms", c => c.RetryBackoffMaxMs, (c, v) => c.RetryBackoffMaxMs = v, Between(0, 600_000)),
    ],
    (sinks, check) => CheckRetryBackoff(check, sinks.RetryBackoffMs, sinks.RetryBackoffMaxMs));

    private static readonly ObjectSpec<DlqConfig> Dlq = new(
    [
        Str<DlqConfig>("topic", c => c.Topic, (c, v) => c.Topic = v),
        Str<DlqConfig>("brokers", c => c.Brokers, (c, v) => c.Brokers = v),
        Int<DlqConfig>("max_message_bytes", c => c.MaxMessageBytes, (c, v) => c.MaxMessageBytes = v, Between(16 * 1024, 100_000_000)),
    ]);

    private static readonly ObjectSpec<MetricsConfig> Metrics = new(
    [
        Bool<MetricsConfig>("enabled", c => c.Enabled, (c, v) => c.Enabled = v),
        Int<MetricsConfig>("port", c => c.Port, (c, v) => c.Port = v, Between(1, 65535)),
        Str<MetricsConfig>("host", c => c.Host, (c, v) => c.Host = v, ListenAddress),
    ]);

    private static readonly ObjectSpec<TelemetryConfig> Telemetry = new(
    [
        Bool<TelemetryConfig>("traces", c => c.Traces, (c, v) => c.Traces = v),
        Str<TelemetryConfig>("otlp_endpoint", c => c.OtlpEndpoint, (c, v) => c.OtlpEndpoint = v, UrlWithScheme("http", "https")),
        Str<TelemetryConfig>("service_name", c => c.ServiceName, (c, v) => c.ServiceName = v),
    ],
    (telemetry, check) =>
    {
        if (telemetry.Traces) Require(check, "otlp_endpoint", telemetry.OtlpEndpoint, "where traces: true sends spans, e.g. http://collector:4318");
    });

    /// <summary>The keys of the <c>logging</c> section (an <c>appsettings.json</c> "Logging" section also holds .NET's own).</summary>
    public static IEnumerable<string> LoggingKeys => Logging.Keys;

    private static readonly ObjectSpec<LoggingConfig> Logging = new(
    [
        new ScalarField<LoggingConfig, string>("level", c => c.Level, (c, v) => c.Level = v, Text, OneOf(LogLevels))
        {
            Normalize = level => level.Trim().ToUpperInvariant(),
        },
        new ScalarField<LoggingConfig, LogFormat>("format", c => c.Format, (c, v) => c.Format = v,
            new Choice<LogFormat>(("json", LogFormat.Json), ("console", LogFormat.Console))),
        Str<LoggingConfig>("output", c => c.Output, (c, v) => c.Output = v, NotEmpty),
    ]);

    private static readonly ObjectSpec<DebugConfig> Debug = new(
    [
        Bool<DebugConfig>("enabled", c => c.Enabled, (c, v) => c.Enabled = v),
        Str<DebugConfig>("host", c => c.Host, (c, v) => c.Host = v, NotEmpty),
        Int<DebugConfig>("port", c => c.Port, (c, v) => c.Port = v, Between(1, 65535)),
        new ScalarField<DebugConfig, string>("auth_token", c => c.AuthToken, (c, v) => c.AuthToken = v, Text)
        {
            // A quoted " token " would otherwise demand the spaces from every client, as Drakkar notes.
            Normalize = token => token.Trim(),
            FullyMasked = true,
        },
        new StringListField<DebugConfig>("allowed_ws_origins", c => c.AllowedWsOrigins, (c, v) => c.AllowedWsOrigins = v),
        Str<DebugConfig>("debug_url", c => c.DebugUrl, (c, v) => c.DebugUrl = v),
        Str<DebugConfig>("db_dir", c => c.DbDir, (c, v) => c.DbDir = v),
        Bool<DebugConfig>("store_events", c => c.StoreEvents, (c, v) => c.StoreEvents = v),
        Bool<DebugConfig>("store_config", c => c.StoreConfig, (c, v) => c.StoreConfig = v),
        Bool<DebugConfig>("store_state", c => c.StoreState, (c, v) => c.StoreState = v),
        Int<DebugConfig>("state_sync_interval_seconds", c => c.StateSyncIntervalSeconds, (c, v) => c.StateSyncIntervalSeconds = v, AtLeast(1)),
        new StringListField<DebugConfig>("expose_env_vars", c => c.ExposeEnvVars, (c, v) => c.ExposeEnvVars = v),
        Int<DebugConfig>("rotation_interval_minutes", c => c.RotationIntervalMinutes, (c, v) => c.RotationIntervalMinutes = v, AtLeast(1)),
        Int<DebugConfig>("retention_hours", c => c.RetentionHours, (c, v) => c.RetentionHours = v, AtLeast(1)),
        Int<DebugConfig>("retention_max_events", c => c.RetentionMaxEvents, (c, v) => c.RetentionMaxEvents = v, AtLeast(100)),
        Bool<DebugConfig>("store_output", c => c.StoreOutput, (c, v) => c.StoreOutput = v),
        Int<DebugConfig>("flush_interval_seconds", c => c.FlushIntervalSeconds, (c, v) => c.FlushIntervalSeconds = v, AtLeast(1)),
        Int<DebugConfig>("max_buffer", c => c.MaxBuffer, (c, v) => c.MaxBuffer = v, AtLeast(1000)),
        Int<DebugConfig>("max_flush_retries", c => c.MaxFlushRetries, (c, v) => c.MaxFlushRetries = v, AtLeast(1)),
        Int<DebugConfig>("max_ui_rows", c => c.MaxUiRows, (c, v) => c.MaxUiRows = v, AtLeast(100)),
        Int<DebugConfig>("log_min_duration_ms", c => c.LogMinDurationMs, (c, v) => c.LogMinDurationMs = v, AtLeast(0)),
        Int<DebugConfig>("ws_min_duration_ms", c => c.WsMinDurationMs, (c, v) => c.WsMinDurationMs = v, AtLeast(0)),
        Int<DebugConfig>("event_min_duration_ms", c => c.EventMinDurationMs, (c, v) => c.EventMinDurationMs = v, AtLeast(0)),
        Int<DebugConfig>("output_min_duration_ms", c => c.OutputMinDurationMs, (c, v) => c.OutputMinDurationMs = v, AtLeast(0)),
        Str<DebugConfig>("prometheus_url", c => c.PrometheusUrl, (c, v) => c.PrometheusUrl = v),
        Str<DebugConfig>("prometheus_rate_interval", c => c.PrometheusRateInterval, (c, v) => c.PrometheusRateInterval = v),
        Str<DebugConfig>("prometheus_worker_label", c => c.PrometheusWorkerLabel, (c, v) => c.PrometheusWorkerLabel = v),
        Str<DebugConfig>("prometheus_cluster_label", c => c.PrometheusClusterLabel, (c, v) => c.PrometheusClusterLabel = v),
        new StringMapListField<DebugConfig>("custom_links", c => c.CustomLinks, (c, v) => c.CustomLinks = v),
    ]);

    private static readonly ObjectSpec<CachePeerSyncConfig> PeerSync = new(
    [
        Bool<CachePeerSyncConfig>("enabled", c => c.Enabled, (c, v) => c.Enabled = v),
        Num<CachePeerSyncConfig>("interval_seconds", c => c.IntervalSeconds, (c, v) => c.IntervalSeconds = v, Above(0.0)),
        Int<CachePeerSyncConfig>("batch_size", c => c.BatchSize, (c, v) => c.BatchSize = v, AtLeast(1)),
        Num<CachePeerSyncConfig>("timeout_seconds", c => c.TimeoutSeconds, (c, v) => c.TimeoutSeconds = v, Above(0.0)),
        new ScalarField<CachePeerSyncConfig, double?>("cycle_deadline_seconds", c => c.CycleDeadlineSeconds,
            (c, v) => c.CycleDeadlineSeconds = v, OptionalNumber, AtLeastOrNull(0.1)),
    ],
    (sync, check) =>
    {
        // The deadline exists to end a cycle before the next one is due; one at or past the interval never fires.
        if (sync.CycleDeadlineSeconds is { } deadline && deadline >= sync.IntervalSeconds)
            check.Fail("cycle_deadline_seconds", $"must be < interval_seconds ({sync.IntervalSeconds}) (got {deadline})");
    });

    private static readonly ObjectSpec<CacheConfig> Cache = new(
    [
        Bool<CacheConfig>("enabled", c => c.Enabled, (c, v) => c.Enabled = v),
        Str<CacheConfig>("db_dir", c => c.DbDir, (c, v) => c.DbDir = v),
        Num<CacheConfig>("flush_interval_seconds", c => c.FlushIntervalSeconds, (c, v) => c.FlushIntervalSeconds = v, Above(0.0)),
        Num<CacheConfig>("cleanup_interval_seconds", c => c.CleanupIntervalSeconds, (c, v) => c.CleanupIntervalSeconds = v, Above(0.0)),
        new ScalarField<CacheConfig, int?>("max_memory_entries", c => c.MaxMemoryEntries, (c, v) => c.MaxMemoryEntries = v,
            OptionalInteger, AtLeastOrNull(1)),
        new SectionField<CacheConfig, CachePeerSyncConfig>("peer_sync", c => c.PeerSync, PeerSync),
    ]);

    public static readonly ObjectSpec<DrakkarConfig> Root = new(
    [
        Str<DrakkarConfig>("worker_name_env", c => c.WorkerNameEnv, (c, v) => c.WorkerNameEnv = v),
        Str<DrakkarConfig>("cluster_name", c => c.ClusterName, (c, v) => c.ClusterName = v),
        Str<DrakkarConfig>("cluster_name_env", c => c.ClusterNameEnv, (c, v) => c.ClusterNameEnv = v),
        new SectionField<DrakkarConfig, KafkaConfig>("kafka", c => c.Kafka, Kafka),
        new SectionField<DrakkarConfig, ExecutorConfig>("executor", c => c.Executor, Executor),
        new SectionField<DrakkarConfig, SinksConfig>("sinks", c => c.Sinks, Sinks),
        new SectionField<DrakkarConfig, DlqConfig>("dlq", c => c.Dlq, Dlq),
        new SectionField<DrakkarConfig, MetricsConfig>("metrics", c => c.Metrics, Metrics),
        new SectionField<DrakkarConfig, TelemetryConfig>("telemetry", c => c.Telemetry, Telemetry),
        new SectionField<DrakkarConfig, LoggingConfig>("logging", c => c.Logging, Logging),
        new SectionField<DrakkarConfig, DebugConfig>("debug", c => c.Debug, Debug),
        new SectionField<DrakkarConfig, CacheConfig>("cache", c => c.Cache, Cache),
    ],
    (config, check) =>
    {
        if (!config.Kafka.ExactlyOnce) return;
        // One transaction carries the sink records and the source offsets, so every destination must be a topic of
        // the source's cluster: another kind of store, or another cluster, cannot join it.
        if (ExactlyOnceOutsiders(config.Sinks) is { Count: > 0 } outsiders)
            check.Fail("kafka.exactly_once", $"needs every sink to be a Kafka sink, but {string.Join(", ", outsiders)} " +
                $"{(outsiders.Count == 1 ? "is" : "are")} not; remove {(outsiders.Count == 1 ? "it" : "them")} or set exactly_once: false");
        foreach (var (name, sink) in config.Sinks.Kafka)
        {
            if (sink.Brokers.Trim().Length > 0 && sink.Brokers.Trim() != config.Kafka.Brokers.Trim())
                check.Fail($"sinks.kafka.{name}.brokers", $"must be empty or kafka.brokers under kafka.exactly_once: one transaction " +
                    $"spans one cluster (got '{SecretMasker.Mask(sink.Brokers)}')");
        }
    });

    /// <summary>The configured sink instances that are not Kafka sinks, by configuration path.</summary>
    private static List<string> ExactlyOnceOutsiders(SinksConfig sinks) =>
    [
        .. SinkKinds.BuiltIn.Where(kind => kind.Kind != SinkKind.Kafka)
            .SelectMany(kind => kind.Instances(sinks).Select(instance => kind.ConfigPath(instance.Key))),
        .. sinks.Custom.SelectMany(kind => kind.Value.Keys.Select(name => SinkKey.ConfigPathOf(SinkKind.Custom, kind.Key, name))),
    ];

    private static void Require(ObjectCheck check, string key, string value, string what)
    {
        if (value.Trim().Length > 0) return;
        check.Fail(key, check.Has(key) ? $"must not be empty ({what})" : $"is required ({what})");
    }
}
