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
    private static ScalarField<T, string> Str<T>(string key, Func<T, string> get, Action<T, string> set, string doc, params ConfigRule<string>[] rules)
        where T : class => new(key, get, set, Text, rules) { Doc = doc };

    /// <summary>A URL the debug page links to: http(s) only, so that no configured link runs script or opens a local file.</summary>
    private static readonly ConfigRule<string> WebLink = UrlWithScheme("http", "https");

    /// <summary>An <c>Origin</c> as a browser sends it (<c>scheme://host[:port]</c>: no path, user or query), or <c>*</c>.</summary>
    private static readonly ConfigRule<string> OriginOrStar = new(value =>
            value == "*" || (Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
                && string.Equals(value.TrimEnd('/'), uri.GetLeftPart(UriPartial.Authority), StringComparison.OrdinalIgnoreCase) && uri.UserInfo.Length == 0)
                ? null
                : $"must be an origin such as https://ops.example.com (scheme, host and port; no path), or * (got '{value}')",
        "an origin (`https://host[:port]`) or `*`");

    /// <summary>An environment variable's name: not empty, no whitespace and no <c>=</c>.</summary>
    private static readonly ConfigRule<string> VariableName = new(value =>
            value.Length > 0 && !value.Any(c => char.IsWhiteSpace(c) || c == '=') ? null : $"must be a variable name: not empty, no spaces or '=' (got '{value}')",
        "a variable name");

    // A key named for a duration in seconds also gets the longest delay .NET timers take (ConfigRules.TimerSeconds): beyond
    // it every timer built from the key threw (a task timeout of a year threw after each task's process had started);
    // one in hours, 100 years (a date that far back).
    private static ScalarField<T, int> Int<T>(string key, Func<T, int> get, Action<T, int> set, string doc, params ConfigRule<int>[] rules)
        where T : class => new(key, get, set, Integer,
            key.EndsWith("_seconds", StringComparison.Ordinal) ? [.. rules, WholeTimerSeconds]
            : key.EndsWith("_hours", StringComparison.Ordinal) ? [.. rules, CenturyOfHours]
            : rules) { Doc = doc };

    private static ScalarField<T, double> Num<T>(string key, Func<T, double> get, Action<T, double> set, string doc, params ConfigRule<double>[] rules)
        where T : class => new(key, get, set, Number, key.EndsWith("_seconds", StringComparison.Ordinal) ? [.. rules, TimerSeconds] : rules) { Doc = doc };

    private static ScalarField<T, bool> Bool<T>(string key, Func<T, bool> get, Action<T, bool> set, string doc)
        where T : class => new(key, get, set, TrueFalse) { Doc = doc };

    private static ScalarField<T, string> UiUrl<T>(Func<T, string> get, Action<T, string> set)
        where T : class => Str("ui_url", get, set,
            "a web UI for this destination; the debug UI's sink table links the instance's name to it", WebLink);

    /// <summary>The keys every sink instance has (<see cref="SinkInstanceConfig"/>) after its own.</summary>
    private static ConfigField<T>[] Instance<T>(params ConfigField<T>[] own) where T : SinkInstanceConfig =>
    [
        .. own,
        Int<T>("batch_size", c => c.BatchSize, (c, v) => c.BatchSize = v,
            "most payloads one sink call carries; one hook call's payloads for the instance are never split, so a " +
                "larger group goes alone",
            Between(1, 100_000)),
        Int<T>("linger_ms", c => c.LingerMs, (c, v) => c.LingerMs = v,
            "how long a batch may wait for `batch_size` payloads before it is sent anyway; `0` sends whatever is " +
                "queued as soon as a delivery slot is free",
            Between(0, 60_000)),
        new ScalarField<T, OutagePolicy>("on_outage", c => c.OnOutage, (c, v) => c.OnOutage = v,
            new Choice<OutagePolicy>(("pause", OutagePolicy.Pause), ("dlq", OutagePolicy.Dlq)))
        {
            Doc = "what an outage (the destination unreachable: a transient error after retries, or the circuit open) " +
                "does. `pause`: hold the payloads (their messages stay uncommitted), pause consumption, probe every " +
                "0.5 s backing off to 5 s, deliver everything once a probe gets through — nothing goes to the DLQ. " +
                "`dlq`: send them to the DLQ (Python Drakkar's behaviour). Payloads the destination refuses (bad " +
                "data, 4xx, constraint) go to the DLQ under both. See [sinks.md](sinks.md#outages)",
        },
        Num<T>("attempt_timeout_seconds", c => c.AttemptTimeoutSeconds, (c, v) => c.AttemptTimeoutSeconds = v,
            "the longest one delivery attempt (one sink call, its connect included) may take; past it the call is " +
                "abandoned and counts as a transient failure (logged, counted, held or dead-lettered like any " +
                "outage), so a destination that accepts and never answers cannot stall the instance. Kafka and " +
                "MongoDB default above their clients' own 30 s timeouts; `http` above a batch's requests queueing " +
                "for `max_connections`. See [sinks.md](sinks.md#outages)",
            Above(0.0), AtMost(86_400.0)),
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
        Str<KafkaConfig>("brokers", c => c.Brokers, (c, v) => c.Brokers = v,
            "bootstrap servers, or `embedded`",
            NotEmpty),
        Str<KafkaConfig>("source_topic", c => c.SourceTopic, (c, v) => c.SourceTopic = v, "topic consumed", NotEmpty),
        Str<KafkaConfig>("consumer_group", c => c.ConsumerGroup, (c, v) => c.ConsumerGroup = v,
            "consumer group id",
            NotEmpty),
        new UnsupportedField<KafkaConfig>("max_poll_records",
            "records are handed to the partition queues one at a time with backpressure checked after each, and " +
            "executor.window_size sets how many reach Arrange at once (librdkafka's prefetch is bounded by the worker)"),
        Int<KafkaConfig>("max_poll_interval_ms", c => c.MaxPollIntervalMs, (c, v) => c.MaxPollIntervalMs = v,
            "librdkafka `max.poll.interval.ms`",
            AtLeast(1)),
        Int<KafkaConfig>("session_timeout_ms", c => c.SessionTimeoutMs, (c, v) => c.SessionTimeoutMs = v,
            "librdkafka `session.timeout.ms`",
            AtLeast(1)),
        Int<KafkaConfig>("heartbeat_interval_ms", c => c.HeartbeatIntervalMs, (c, v) => c.HeartbeatIntervalMs = v,
            "librdkafka `heartbeat.interval.ms`; under `classic` it must be below `session_timeout_ms` (about a third of it: lower it with a short session)",
            AtLeast(1)),
        new ScalarField<KafkaConfig, string>("group_protocol", c => c.GroupProtocol, (c, v) => c.GroupProtocol = v, Text, OneOf(GroupProtocols))
        {
            Doc = "consumer group protocol. `classic`: join/sync rounds with cooperative-sticky assignment, every " +
                "broker. `consumer` (KIP-848, Kafka 4.0+): the broker assigns and moves partitions one at a time, no " +
                "group-wide pause; `session_timeout_ms` and `heartbeat_interval_ms` are then the broker's " +
                "(`group.consumer.*`) and ignored here (a value other than the default is warned about at start and by `check-config`). See " +
                "[operations.md](operations.md#scaling-and-rolling-restarts)",
        },
        Str<KafkaConfig>("group_instance_id", c => c.GroupInstanceId, (c, v) => c.GroupInstanceId = v,
            "static membership (librdkafka `group.instance.id`; `${WORKER_ID}` works). A restarted worker with " +
                "the same id takes its partitions back without a rebalance (classic protocol on Kafka), but a stopped " +
                "one does not leave the group: its partitions wait `session_timeout_ms` for it. Off by default " +
                "because that wait would stall every scale-in; use it for workers that restart in place " +
                "(StatefulSet-style). What it buys after a `kill -9`, per protocol and on the embedded broker (which " +
                "does not replace static members): [operations.md](operations.md#restarting-after-a-crash)"),
        Int<KafkaConfig>("commit_interval_ms", c => c.CommitIntervalMs, (c, v) => c.CommitIntervalMs = v,
            "minimum spacing of offset commits (revoke and shutdown always commit); `0` commits as often as the " +
                "commit loop runs (about every millisecond)",
            AtLeast(0)),
        new ScalarField<KafkaConfig, bool>("exactly_once", c => c.ExactlyOnce, (c, v) => c.ExactlyOnce = v, TrueFalse)
        {
            Doc = "exactly-once Kafka→Kafka: the Kafka sinks' records and the source offsets they answer are committed " +
                "in one producer transaction per commit tick, and the consumer commits nothing. Every configured sink " +
                "must be a Kafka sink (any other is an error naming it) whose `brokers` is empty or equal to " +
                "`kafka.brokers`. Records reach the sink topic at the commit tick, not as they are delivered. See " +
                "[semantics.md](semantics.md#exactly-once-kafkakafka)",
            AllowedNote = "only Kafka sinks, on `kafka.brokers`",
        },
        Str<KafkaConfig>("security_protocol", c => c.SecurityProtocol, (c, v) => c.SecurityProtocol = v,
            "librdkafka `security.protocol`, for every Kafka client of the worker: the source consumer, the Kafka " +
                "sinks, the DLQ producer and `replay-dlq` (both its clients). A sink or the DLQ with its own " +
                "`brokers` connects with the same settings",
            OneOf(KafkaSecurity.Protocols)),
        Str<KafkaConfig>("sasl_mechanism", c => c.SaslMechanism, (c, v) => c.SaslMechanism = v,
            "`sasl.mechanism`; required with a `sasl_*` protocol, refused without one. GSSAPI (Kerberos) and " +
                "OAUTHBEARER are not offered: the self-contained librdkafka build used on Debian has no Cyrus SASL, " +
                "and OAUTHBEARER needs a token callback",
            EmptyOr(OneOf(KafkaSecurity.Mechanisms))),
        Str<KafkaConfig>("sasl_username", c => c.SaslUsername, (c, v) => c.SaslUsername = v,
            "`sasl.username`; required with a `sasl_*` protocol, refused without one"),
        new ScalarField<KafkaConfig, string>("sasl_password", c => c.SaslPassword, (c, v) => c.SaslPassword = v, Text)
        {
            Doc = "`sasl.password` (use `${KAFKA_PASSWORD}`); required with a `sasl_*` protocol, refused without one. " +
                "Masked in `check-config`, and wherever an error repeats it",
            FullyMasked = true,
        },
        Str<KafkaConfig>("ssl_ca_location", c => c.SslCaLocation, (c, v) => c.SslCaLocation = v,
            "`ssl.ca.location`: PEM file of the CAs the brokers' certificates are checked against; empty: the " +
                "system's store. Only with `ssl`/`sasl_ssl`"),
        Str<KafkaConfig>("ssl_certificate_location", c => c.SslCertificateLocation, (c, v) => c.SslCertificateLocation = v,
            "`ssl.certificate.location`: client certificate (PEM) for mutual TLS. Only with `ssl`/`sasl_ssl`"),
        Str<KafkaConfig>("ssl_key_location", c => c.SslKeyLocation, (c, v) => c.SslKeyLocation = v,
            "`ssl.key.location`: its private key (PEM). Only with `ssl`/`sasl_ssl`"),
        new ScalarField<KafkaConfig, string>("ssl_key_password", c => c.SslKeyPassword, (c, v) => c.SslKeyPassword = v, Text)
        {
            Doc = "`ssl.key.password`, when that key is encrypted; masked like `sasl_password`. Only with " +
                "`ssl`/`sasl_ssl`",
            FullyMasked = true,
        },
        Bool<KafkaConfig>("ssl_verify_hostname", c => c.SslVerifyHostname, (c, v) => c.SslVerifyHostname = v,
            "`false` sets `ssl.endpoint.identification.algorithm=none` (the broker's certificate need not name " +
                "the host); only for test clusters"),
        Str<KafkaConfig>("ui_url", c => c.UiUrl, (c, v) => c.UiUrl = v,
            "your Kafka web UI (Kafka UI / Kafbat, AKHQ…); the debug UI links to it ([debug-ui.md](debug-ui.md#links))", WebLink),
        Str<KafkaConfig>("ui_cluster_name", c => c.UiClusterName, (c, v) => c.UiClusterName = v,
            "the cluster's name in that Kafka UI: shown in the debug UI, and with `ui_url` the link goes to the source " +
                "topic's page, `{ui_url}/ui/clusters/{ui_cluster_name}/all-topics/{source_topic}`"),
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
        // Under the classic protocol a member whose heartbeats are not well inside its session is evicted between two of
        // them: with session 3000 and the default heartbeat 3000 a lone worker lost its partitions every few seconds,
        // redoing their work each time. Kafka's Java client refuses the same; librdkafka does not.
        if (!kafka.UsesConsumerProtocol && kafka.HeartbeatIntervalMs >= kafka.SessionTimeoutMs)
        {
            var (key, other) = check.Has("heartbeat_interval_ms") ? ("heartbeat_interval_ms", "session_timeout_ms") : ("session_timeout_ms", "heartbeat_interval_ms");
            check.Fail(key, $"heartbeat_interval_ms ({kafka.HeartbeatIntervalMs}) must be below session_timeout_ms ({kafka.SessionTimeoutMs}), " +
                $"or the group evicts this worker between heartbeats; set {other} too (a heartbeat of about a third of the session)");
        }
    });

    public static readonly ObjectSpec<ExecutorConfig> Executor = new(
    [
        new ScalarField<ExecutorConfig, string?>("binary_path", c => c.BinaryPath, (c, v) => c.BinaryPath = v, OptionalText, NotEmptyOrNull)
        {
            Doc = "binary every task runs; a task's `BinaryPath` wins. With neither, the task fails " +
                "(`ExecutorFailure.NoBinary`). Checked at start: a path that is missing or not executable (a name without " +
                "a slash: not on the worker's `PATH`) stops the worker before it consumes (exit 1)",
        },
        new StringMapField<ExecutorConfig>("env", c => c.Env)
        {
            Doc = "variables added to every task's environment",
        },
        Bool<ExecutorConfig>("env_inherit_parent", c => c.EnvInheritParent, (c, v) => c.EnvInheritParent = v,
            "children inherit the worker's environment"),
        new StringListField<ExecutorConfig>("env_inherit_deny", c => c.EnvInheritDeny, (c, v) => c.EnvInheritDeny = v)
        {
            Doc = "case-insensitive globs (`*`, `?`) of inherited variables to drop, on top of the secret-name rule " +
                "that always applies to inherited variables (names with password, pwd, secret, token, credential, " +
                "private, signature…, ending in key/dsn/pass, a word auth/sig/pat, or `*_URL`/`*_URI`/connection " +
                "strings; see [security](security.md#child-process-environment)); `executor.env` and task env are not " +
                "filtered",
        },
        Int<ExecutorConfig>("max_executors", c => c.MaxExecutors, (c, v) => c.MaxExecutors = v,
            "process slots shared by all partitions",
            AtLeast(1)),
        Int<ExecutorConfig>("task_timeout_seconds", c => c.TaskTimeoutSeconds, (c, v) => c.TaskTimeoutSeconds = v,
            "a task running longer has its whole process group killed",
            AtLeast(1)),
        Int<ExecutorConfig>("window_size", c => c.WindowSize, (c, v) => c.WindowSize = v,
            "most messages handed to one `Arrange` call",
            AtLeast(1)),
        Int<ExecutorConfig>("max_retries", c => c.MaxRetries, (c, v) => c.MaxRetries = v,
            "how many times `ErrorDecision.Retry` re-runs a task, and `DeliveryAction.Retry` re-delivers a failed " +
                "payload group (one hook call's payloads for one sink instance)",
            AtLeast(0)),
        Int<ExecutorConfig>("retry_backoff_ms", c => c.RetryBackoffMs, (c, v) => c.RetryBackoffMs = v,
            "the wait before an `ErrorDecision.Retry` runs the task again: retry *n* waits a random time between half " +
                "and all of `retry_backoff_ms × 2^(n−1)` (capped exponential backoff with jitter); `0` retries at once. The *n*-th " +
                "generation of `ErrorDecision.Replace` tasks waits the same before it runs. The wait is cut short, leaving the message uncommitted, when the partition is lost or its drain times out",
            Between(0, 600_000)),
        new ScalarField<ExecutorConfig, int>("retry_backoff_max_ms", c => c.RetryBackoffMaxMs, (c, v) => c.RetryBackoffMaxMs = v,
            Integer, Between(0, 600_000))
        {
            Doc = "the cap of that doubling",
            AllowedNote = "≥ `retry_backoff_ms`",
        },
        Int<ExecutorConfig>("drain_timeout_seconds", c => c.DrainTimeoutSeconds, (c, v) => c.DrainTimeoutSeconds = v,
            "how long a revoked partition, or shutdown, waits for work already started (windows being arranged, " +
                "running tasks, hooks, deliveries in flight); messages still queued are left uncommitted for the next " +
                "owner",
            AtLeast(1)),
        Int<ExecutorConfig>("backpressure_high_multiplier", c => c.BackpressureHighMultiplier, (c, v) => c.BackpressureHighMultiplier = v,
            "pause consumption when load ≥ `max_executors ×` this",
            AtLeast(1)),
        new ScalarField<ExecutorConfig, int>("backpressure_low_multiplier", c => c.BackpressureLowMultiplier, (c, v) => c.BackpressureLowMultiplier = v,
            Integer, AtLeast(1))
        {
            Doc = "resume when load ≤ `max_executors ×` this",
            AllowedNote = "≤ `backpressure_high_multiplier`",
        },
        Int<ExecutorConfig>("max_output_bytes", c => c.MaxOutputBytes, (c, v) => c.MaxOutputBytes = v,
            "per-stream capture limit (16 MiB by default); beyond it output is truncated and " +
                "`ExecutorResult.StdoutTruncated`/`StderrTruncated` is set",
            AtLeast(1024)),
        new ScalarField<ExecutorConfig, ExecutorMode>("mode", c => c.Mode, (c, v) => c.Mode = v,
            new Choice<ExecutorMode>(("spawn", ExecutorMode.Spawn), ("persistent", ExecutorMode.Persistent)))
        {
            Doc = "`spawn`: a new process per task. `persistent`: up to `max_executors` long-lived processes of " +
                "`binary_path`, each taking one framed request at a time " +
                "([executor-protocol.md](executor-protocol.md)); the keys below apply only to it",
        },
        new StringListField<ExecutorConfig>("process_args", c => c.ProcessArgs, (c, v) => c.ProcessArgs = v)
        {
            Doc = "persistent mode: the arguments each long-lived process starts with (a task's own `Args` travel in " +
                "its request)",
        },
        Int<ExecutorConfig>("ready_timeout_seconds", c => c.ReadyTimeoutSeconds, (c, v) => c.ReadyTimeoutSeconds = v,
            "persistent mode: a new process must print `{\"ready\": true}` within this, else it is killed and the " +
                "task fails (`SpawnFailed`)",
            AtLeast(1)),
        Int<ExecutorConfig>("max_tasks_per_process", c => c.MaxTasksPerProcess, (c, v) => c.MaxTasksPerProcess = v,
            "persistent mode: a process is ended and replaced after answering this many tasks; `0` keeps it",
            AtLeast(0)),
        Int<ExecutorConfig>("max_rss_mb", c => c.MaxRssMb, (c, v) => c.MaxRssMb = v,
            "persistent mode: after each task, a process whose resident memory (its own `VmRSS`) is above this " +
                "many MiB is ended and replaced; `0` never checks",
            AtLeast(0)),
        Int<ExecutorConfig>("restart_backoff_ms", c => c.RestartBackoffMs, (c, v) => c.RestartBackoffMs = v,
            "persistent mode: wait before starting a process after one crashed, timed out, broke the protocol or " +
                "failed to start; doubles per failure in a row, reset by a start that reaches the ready line or an answered task " +
                "(so only failed starts back off further)",
            Between(0, 600_000)),
        new ScalarField<ExecutorConfig, int>("restart_backoff_max_ms", c => c.RestartBackoffMaxMs, (c, v) => c.RestartBackoffMaxMs = v,
            Integer, Between(0, 600_000))
        {
            Doc = "persistent mode: the longest such wait",
            AllowedNote = "≥ `restart_backoff_ms`",
        },
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
        new ScalarField<KafkaSinkConfig, string>("topic", c => c.Topic, (c, v) => c.Topic = v, Text)
        {
            Doc = "topic records go to",
            AllowedNote = "required",
        },
        Str<KafkaSinkConfig>("brokers", c => c.Brokers, (c, v) => c.Brokers = v, "empty inherits `kafka.brokers`"),
        Bool<KafkaSinkConfig>("idempotent", c => c.Idempotent, (c, v) => c.Idempotent = v,
            "enables producer idempotence; also marks the sink idempotent for fast retries"),
    ]),
    (sink, check) => Require(check, "topic", sink.Topic, "the topic this sink produces to"));

    private static readonly ObjectSpec<PostgresSinkConfig> PostgresSink = new(Instance(
    [
        new ScalarField<PostgresSinkConfig, string>("dsn", c => c.Dsn, (c, v) => c.Dsn = v, Text)
        {
            Doc = "Npgsql connection string (`Host=db;Username=app;Password=…;Database=app`), or a libpq URI as Python " +
                "Drakkar's configurations hold (`postgresql://app:${PG_PASSWORD}@db:5432/app?sslmode=require`; query " +
                "parameters: " + string.Join(", ", global::Drakkar.Sinks.Postgres.PostgresDsn.UriParameters.Select(p => $"`{p}`")) + ")",
            AllowedNote = "required; must parse as either",
        },
        new ScalarField<PostgresSinkConfig, int>("pool_min", c => c.PoolMin, (c, v) => c.PoolMin = v,
            Integer, AtLeast(1))
        {
            Doc = "minimum pool size",
            AllowedNote = "≤ `pool_max`",
        },
        Int<PostgresSinkConfig>("pool_max", c => c.PoolMax, (c, v) => c.PoolMax = v, "maximum pool size", AtLeast(1)),
        new ScalarField<PostgresSinkConfig, PostgresWriteMode>("mode", c => c.Mode, (c, v) => c.Mode = v,
            new Choice<PostgresWriteMode>(("insert", PostgresWriteMode.Insert), ("bulk", PostgresWriteMode.Bulk), ("upsert", PostgresWriteMode.Upsert)))
        {
            Doc = "write mode",
        },
        new StringListField<PostgresSinkConfig>("on_conflict", c => c.OnConflict, (c, v) => c.OnConflict = v)
        {
            Doc = "conflict key columns for `upsert`",
            AllowedNote = "required with `upsert`, refused otherwise; each a SQL identifier",
        },
    ]),
    (sink, check) =>
    {
        Require(check, "dsn", sink.Dsn, "the connection string, e.g. Host=db;Username=app;Password=${PG_PASSWORD};Database=app");
        if (!string.IsNullOrWhiteSpace(sink.Dsn) && global::Drakkar.Sinks.Postgres.PostgresDsn.Problem(sink.Dsn) is { } problem)
            check.Fail("dsn", $"is not a usable Npgsql connection string or postgresql:// URI: {SecretMasker.Mask(problem)}");
        if (sink.PoolMin > sink.PoolMax)
            check.Fail("pool_min", $"must be ≤ pool_max ({sink.PoolMax}) (got {sink.PoolMin})");
        if (sink.Mode == PostgresWriteMode.Upsert && sink.OnConflict.Count == 0)
            check.Fail("on_conflict", "mode 'upsert' needs the conflict key columns, e.g. on_conflict: [request_id]");
        if (sink.Mode != PostgresWriteMode.Upsert && sink.OnConflict.Count > 0)
            check.Fail("on_conflict", $"is only used with mode 'upsert' (mode is '{sink.Mode.ToString().ToLowerInvariant()}')");
        foreach (var column in sink.OnConflict.Where(column => !IsSqlIdentifier(column)))
            check.Fail("on_conflict", $"'{column}' is not a valid column name (letters, digits and '_', not starting with a digit, at most 63 characters)");
    });

    private static readonly ObjectSpec<MongoSinkConfig> MongoSink = new(Instance(
    [
        new ScalarField<MongoSinkConfig, string>("uri", c => c.Uri, (c, v) => c.Uri = v,
            Text, UrlWithScheme("mongodb", "mongodb+srv"))
        {
            Doc = "connection string",
            AllowedNote = "required; any option the official driver accepts (replica set, TLS, `authMechanism`, write concern, " +
                "timeouts); checked by the driver at start-up",
        },
        new ScalarField<MongoSinkConfig, string>("database", c => c.Database, (c, v) => c.Database = v, Text)
        {
            Doc = "database the collections live in",
            AllowedNote = "required",
        },
    ]),
    (sink, check) =>
    {
        Require(check, "uri", sink.Uri, "the server address, e.g. mongodb://mongo:27017");
        Require(check, "database", sink.Database, "the database the collections live in");
    });

    private static readonly ObjectSpec<HttpSinkConfig> HttpSink = new(Instance(
    [
        new ScalarField<HttpSinkConfig, string>("url", c => c.Url, (c, v) => c.Url = v, Text, HttpSinkUrl)
        {
            Doc = "endpoint",
            AllowedNote = "required",
        },
        new ScalarField<HttpSinkConfig, string>("method", c => c.Method, (c, v) => c.Method = v, Text, OneOf(HttpMethods))
        {
            Doc = "request method",
            Normalize = method => method.Trim().ToUpperInvariant(),
        },
        Int<HttpSinkConfig>("timeout_seconds", c => c.TimeoutSeconds, (c, v) => c.TimeoutSeconds = v,
            "per-request timeout (at most about 24.8 days, the longest `HttpClient` takes)",
            AtLeast(1), AtMost(MaxHttpClientSeconds)),
        new StringMapField<HttpSinkConfig>("headers", c => c.Headers)
        {
            Doc = "extra headers; values may use `${VAR}`",
        },
        Int<HttpSinkConfig>("max_retries", c => c.MaxRetries, (c, v) => c.MaxRetries = v,
            "how many times the sink itself sends one payload's request again after a transient failure (backoff " +
                "100 ms, doubling, at most 2 s) before the delivery engine hears of the failure: always for a request " +
                "that was never sent (the name did not resolve, the connection was refused, reset or timed out while " +
                "opening), and for one that may have reached the receiver (5xx/408/429, a timeout, a connection cut " +
                "mid-answer) only with `idempotency_key: true`; 0 tries once",
            Between(0, 100)),
        Int<HttpSinkConfig>("max_connections", c => c.MaxConnections, (c, v) => c.MaxConnections = v,
            "requests of this instance in flight at once, across all its batches, retries and probes; also the " +
                "most connections kept open to the endpoint (idle ones are reused, keep-alive). A request waiting for " +
                "a free slot is not yet timed: `timeout_seconds` starts when it gets one",
            Between(1, 1024)),
        new ScalarField<HttpSinkConfig, bool>("idempotency_key", c => c.IdempotencyKey, (c, v) => c.IdempotencyKey = v,
            TrueFalse)
        {
            Doc = "sends an `Idempotency-Key` header (a quoted UUID) derived from the payload's source — consumer " +
                "group, instance, topic, partition, offsets, hook call and index — the same on every retry and on a " +
                "redelivery after a crash, so the receiver can drop repeats; see [sinks](sinks.md#http-sinkshttpname)",
            AllowedNote = "not together with an `Idempotency-Key` entry in `headers`",
        },
        Bool<HttpSinkConfig>("allow_loopback", c => c.AllowLoopback, (c, v) => c.AllowLoopback = v,
            "lets a host **name** that resolves to a loopback address (127.0.0.0/8, `::1`, `0.0.0.0`) be used; a " +
                "loopback literal or `localhost` written in `url` is always allowed"),
    ]),
    (sink, check) =>
    {
        Require(check, "url", sink.Url, "the endpoint payloads are sent to, e.g. https://api.example.com/events");
        if (sink.IdempotencyKey && sink.Headers.ContainsKey("Idempotency-Key"))
            check.Fail("headers", "sets Idempotency-Key, which idempotency_key: true derives itself; remove one of the two");
    });

    private static readonly ObjectSpec<RedisSinkConfig> RedisSink = new(Instance(
    [
        new ScalarField<RedisSinkConfig, string>("url", c => c.Url, (c, v) => c.Url = v,
            Text, NotEmpty, UrlWithScheme("redis", "rediss", "unix"))
        {
            Doc = "server, with optional ACL user, password and database; port defaults to 6379 (26379 with " +
                "`sentinel_service`)",
            AllowedNote = "written `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS) or " +
                "`unix://[[user]:password@]/path/redis.sock[?db=N]`",
        },
        Str<RedisSinkConfig>("key_prefix", c => c.KeyPrefix, (c, v) => c.KeyPrefix = v,
            "prepended to every payload key"),
        new StringListField<RedisSinkConfig>("endpoints", c => c.Endpoints, (c, v) => c.Endpoints = v)
        {
            Doc = "more nodes beside the URL's: cluster seed nodes, or further sentinels",
            AllowedNote = "each `host:port` (or `host`)",
        },
        Str<RedisSinkConfig>("sentinel_service", c => c.SentinelService, (c, v) => c.SentinelService = v,
            "the primary's name as the sentinels know it; when set, `url` and `endpoints` are sentinels"),
        new ScalarField<RedisSinkConfig, string>("tls_ca_file", c => c.TlsCaFile, (c, v) => c.TlsCaFile = v, Text)
        {
            Doc = "a CA to trust besides the system's (a private CA)",
            AllowedNote = "a PEM file that exists; only with `rediss://`",
        },
    ]),
    (sink, check) =>
    {
        // What the sink would refuse at start (a query parameter other than db, an endpoint that is not host:port, a
        // missing CA file) is a configuration mistake check-config reports too.
        if (sink.Url.Trim().Length > 0 && global::Drakkar.Sinks.Redis.RedisOptions.Problem(sink) is { } problem)
            check.Fail(problem.Key, problem.Reason);
    });

    private static readonly ObjectSpec<FileSinkConfig> FileSink = new(Instance(
    [
        new ScalarField<FileSinkConfig, string>("base_path", c => c.BasePath, (c, v) => c.BasePath = v, Text)
        {
            Doc = "directory every written file must stay inside; must exist at start-up",
            AllowedNote = "required",
        },
    ]),
    (sink, check) => Require(check, "base_path", sink.BasePath, "the directory every written file must stay inside"));

    private static readonly ObjectSpec<CircuitBreakerConfig> CircuitBreaker = new(
    [
        Int<CircuitBreakerConfig>("failure_threshold", c => c.FailureThreshold, (c, v) => c.FailureThreshold = v,
            "consecutive terminal failures of the kind a retry could fix (connection, timeout, 5xx) that open the circuit; a refused payload does not count and resets the count. Used with `on_outage: dlq`; under `pause` (the default) the first such failure holds the payloads and opens the circuit",
            AtLeast(1)),
        Num<CircuitBreakerConfig>("cooldown_seconds", c => c.CooldownSeconds, (c, v) => c.CooldownSeconds = v,
            "how long the circuit stays open before one probe (`on_outage: dlq`; under `pause` held payloads are probed after 0.5 s, backing off to 5 s)",
            AtLeast(0.0)),
    ]);

    public static readonly ObjectSpec<SinksConfig> Sinks = new(
    [
        new InstancesField<SinksConfig, KafkaSinkConfig>("kafka", c => c.Kafka, () => new(), KafkaSink),
        new InstancesField<SinksConfig, PostgresSinkConfig>("postgres", c => c.Postgres, () => new(), PostgresSink),
        new InstancesField<SinksConfig, MongoSinkConfig>("mongo", c => c.Mongo, () => new(), MongoSink),
        new InstancesField<SinksConfig, HttpSinkConfig>("http", c => c.Http, () => new(), HttpSink),
        new InstancesField<SinksConfig, RedisSinkConfig>("redis", c => c.Redis, () => new(), RedisSink),
        new InstancesField<SinksConfig, FileSinkConfig>("filesystem", c => c.Filesystem, () => new(), FileSink),
        new CustomSinksField<SinksConfig>("custom", c => c.Custom, new ObjectSpec<CustomSinkConfig>(Instance<CustomSinkConfig>())),
        new SectionField<SinksConfig, CircuitBreakerConfig>("circuit_breaker", c => c.CircuitBreaker, CircuitBreaker),
        Int<SinksConfig>("max_inflight_payloads", c => c.MaxInflightPayloads, (c, v) => c.MaxInflightPayloads = v,
            "payloads handed to the delivery engine and not yet settled (delivered, dead-lettered or skipped), " +
                "counted across all instances; when the count reaches this value every partition is paused until it " +
                "falls to half",
            AtLeast(1)),
        Int<SinksConfig>("retry_backoff_ms", c => c.RetryBackoffMs, (c, v) => c.RetryBackoffMs = v,
            "the wait before a `DeliveryAction.Retry` delivers the group again: retry *n* waits a random time between " +
                "half and all of `retry_backoff_ms × 2^(n−1)` (capped exponential backoff with jitter), so a failing " +
                "destination is not hammered; `0` retries at once. Separate from a sink's own fast retries " +
                "([sinks.md](sinks.md#delivery-retries-and-the-breaker)). The wait is cut short, leaving the message " +
                "uncommitted, when its partition is given up or the sinks close",
            Between(0, 600_000)),
        new ScalarField<SinksConfig, int>("retry_backoff_max_ms", c => c.RetryBackoffMaxMs, (c, v) => c.RetryBackoffMaxMs = v,
            Integer, Between(0, 600_000))
        {
            Doc = "the cap of that doubling",
            AllowedNote = "≥ `retry_backoff_ms`",
        },
    ],
    (sinks, check) => CheckRetryBackoff(check, sinks.RetryBackoffMs, sinks.RetryBackoffMaxMs));

    private static readonly ObjectSpec<DlqConfig> Dlq = new(
    [
        Str<DlqConfig>("topic", c => c.Topic, (c, v) => c.Topic = v, "empty means `{kafka.source_topic}_dlq`"),
        Str<DlqConfig>("brokers", c => c.Brokers, (c, v) => c.Brokers = v, "empty inherits `kafka.brokers`"),
        Int<DlqConfig>("max_message_bytes", c => c.MaxMessageBytes, (c, v) => c.MaxMessageBytes = v,
            "largest DLQ record value written; a bigger record has its stored values cut, each ending with a " +
                "marker naming its source (`topic[partition]@offset`), and carries `\"truncated\": true` (see " +
                "[dlq-and-replay.md](dlq-and-replay.md#size-limit-and-truncated-records)). The DLQ producer's " +
                "`message.max.bytes` is set to this plus 64 KiB",
            Between(16 * 1024, 100_000_000)),
    ]);

    private static readonly ObjectSpec<MetricsConfig> Metrics = new(
    [
        Bool<MetricsConfig>("enabled", c => c.Enabled, (c, v) => c.Enabled = v,
            "serve `/metrics` (see [operations.md](operations.md))"),
        Int<MetricsConfig>("port", c => c.Port, (c, v) => c.Port = v,
            "port of the metrics endpoint",
            Between(1, 65535)),
        Str<MetricsConfig>("host", c => c.Host, (c, v) => c.Host = v,
            "address the endpoint listens on: every interface by default, so Kubernetes probes and Prometheus " +
                "reach it; `127.0.0.1` keeps it on the machine",
            ListenAddress),
    ]);

    private static readonly ObjectSpec<TelemetryConfig> Telemetry = new(
    [
        Bool<TelemetryConfig>("traces", c => c.Traces, (c, v) => c.Traces = v,
            "record spans and send them to `otlp_endpoint`; while off, no span is made and no `traceparent` is " +
                "written"),
        new ScalarField<TelemetryConfig, string>("otlp_endpoint", c => c.OtlpEndpoint, (c, v) => c.OtlpEndpoint = v,
            Text, UrlWithScheme("http", "https"))
        {
            Doc = "the collector's base URL, as in `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://collector:4318`); spans are " +
                "posted to `{otlp_endpoint}/v1/traces`",
            AllowedNote = "required when `traces` is true",
        },
        Str<TelemetryConfig>("service_name", c => c.ServiceName, (c, v) => c.ServiceName = v,
            "`service.name` of the exported spans; empty uses the worker id (`WORKER_ID`)"),
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
            Doc = "minimum level",
            Normalize = level => level.Trim().ToUpperInvariant(),
        },
        new ScalarField<LoggingConfig, LogFormat>("format", c => c.Format, (c, v) => c.Format = v,
            new Choice<LogFormat>(("json", LogFormat.Json), ("console", LogFormat.Console)))
        {
            Doc = "JSON lines or a compact human format",
        },
        Str<LoggingConfig>("output", c => c.Output, (c, v) => c.Output = v,
            "`stderr`, `stdout`, or a file path (appended with `O_APPEND`, one write per line, so several workers " +
                "may share one file; `{worker_id}` and `{cluster_name}` are replaced; the directory is created)",
            NotEmpty),
    ]);

    private static readonly ObjectSpec<DebugConfig> Debug = new(
    [
        Bool<DebugConfig>("enabled", c => c.Enabled, (c, v) => c.Enabled = v, "starts the flight recorder and the debug UI. Python Drakkar defaults to `true`; here a " +
                "listening port and files on disk are opted into"),
        Str<DebugConfig>("host", c => c.Host, (c, v) => c.Host = v, "address the UI listens on (`0.0.0.0` exposes it: set `auth_token`)", ListenAddress),
        Int<DebugConfig>("port", c => c.Port, (c, v) => c.Port = v, "the UI's port; in use at startup is an error naming this key, and so is `metrics.port`'s value while both are " +
            "enabled (each listens on a port of its own)", Between(1, 65535)),
        new ScalarField<DebugConfig, string>("auth_token", c => c.AuthToken, (c, v) => c.AuthToken = v, Text,
            // Blank after trimming would turn authentication off without a word (a quoted "  ", an unfilled variable).
            new ConfigRule<string>(token => token.Length > 0 && token.Trim().Length == 0
                ? "is only whitespace, which would turn authentication off: give a token, or leave it empty for none" : null, "not only whitespace"))
        {
            Doc = "when set, every UI request needs it: `Authorization: Bearer <token>`, or `?token=<token>` once " +
                "(it sets an HttpOnly cookie for the page's own requests); otherwise 401",
            AllowedNote = "surrounding whitespace stripped; fully masked in output",
            // A quoted " token " would otherwise demand the spaces from every client, as Drakkar notes.
            Normalize = token => token.Trim(),
            FullyMasked = true,
        },
        new StringListField<DebugConfig>("allowed_ws_origins", c => c.AllowedWsOrigins, (c, v) => c.AllowedWsOrigins = v)
        {
            Doc = "extra `Origin`s (`https://ops.example.com`, or `*`) allowed to open the live event stream " +
                "(`/api/stream`, server-sent events) from another site; the UI's own origin always may",
            EachItem = OriginOrStar,
        },
        Str<DebugConfig>("debug_url", c => c.DebugUrl, (c, v) => c.DebugUrl = v, "the address operators reach this worker's UI at (behind a proxy): logged at startup, shown on " +
                "the page, and stored in the recorder's `worker_config` rows", WebLink),
        Str<DebugConfig>("db_dir", c => c.DbDir, (c, v) => c.DbDir = v, "directory of the recorder's SQLite files (created at start); `\"\"` keeps the recorder in memory only (the UI still " +
                "shows recent tasks and dead letters)"),
        Bool<DebugConfig>("store_events", c => c.StoreEvents, (c, v) => c.StoreEvents = v, "write events to the `events` table"),
        Bool<DebugConfig>("store_config", c => c.StoreConfig, (c, v) => c.StoreConfig = v, "write a `worker_config` row (masked config, `expose_env_vars`, `debug_url`) into each new file"),
        Bool<DebugConfig>("store_state", c => c.StoreState, (c, v) => c.StoreState = v, "write the UI's state document (partitions, executor, sinks) to `worker_state` every " +
                "`state_sync_interval_seconds`"),
        Int<DebugConfig>("state_sync_interval_seconds", c => c.StateSyncIntervalSeconds, (c, v) => c.StateSyncIntervalSeconds = v,
            "see `store_state`",
            AtLeast(1)),
        new StringListField<DebugConfig>("expose_env_vars", c => c.ExposeEnvVars, (c, v) => c.ExposeEnvVars = v)
        {
            Doc = "names of environment variables whose values the UI shows and `worker_config` stores (unset ones " +
                "are left out)",
            EachItem = VariableName,
        },
        Int<DebugConfig>("rotation_interval_minutes", c => c.RotationIntervalMinutes, (c, v) => c.RotationIntervalMinutes = v,
            "the recorder starts a new file this often",
            AtLeast(1)),
        Int<DebugConfig>("retention_hours", c => c.RetentionHours, (c, v) => c.RetentionHours = v, "rows older than this are deleted from the current file after each flush; at startup and at each " +
                "rotation, recorder files in db_dir last written longer ago are deleted, those of earlier runs under other worker ids " +
                "included, if they are this user's regular files and recorder databases (another program's file with such a name is left alone)", AtLeast(1)),
        Int<DebugConfig>("retention_max_events", c => c.RetentionMaxEvents, (c, v) => c.RetentionMaxEvents = v,
            "the current file keeps at most this many events (the newest)",
            AtLeast(100)),
        Bool<DebugConfig>("store_output", c => c.StoreOutput, (c, v) => c.StoreOutput = v, "store the start of each task's stdout/stderr (4,096 characters each) with its finish event; the page shows it either way " +
            "(kept in memory), per `output_min_duration_ms`"),
        Int<DebugConfig>("flush_interval_seconds", c => c.FlushIntervalSeconds, (c, v) => c.FlushIntervalSeconds = v,
            "the writer stores waiting events this often, and as soon as one recording thread has 4,000 waiting (a quarter of " +
                "`max_buffer` if that is smaller), one transaction per batch",
            AtLeast(1)),
        Int<DebugConfig>("max_buffer", c => c.MaxBuffer, (c, v) => c.MaxBuffer = v, "the most events waiting for the writer; beyond it, and when a recording thread's lane " +
                "wraps before the writer reaches its events, the oldest waiting are dropped and counted in " +
                "`drakkar_recorder_dropped_events_total{reason=\"buffer_full\"}` (the pipeline never waits)", AtLeast(1000)),
        Int<DebugConfig>("max_flush_retries", c => c.MaxFlushRetries, (c, v) => c.MaxFlushRetries = v, "attempts to store one batch before it is dropped (`reason=\"write_failed\"`)", AtLeast(1)),
        Int<DebugConfig>("max_ui_rows", c => c.MaxUiRows, (c, v) => c.MaxUiRows = v, "recent tasks and dead letters kept in memory for the UI, and the most rows one UI list returns", AtLeast(100)),
        Int<DebugConfig>("log_min_duration_ms", c => c.LogMinDurationMs, (c, v) => c.LogMinDurationMs = v,
            "a task attempt at least this long is logged (`Slow task …`) and listed under \"Slow tasks\"",
            AtLeast(0)),
        Int<DebugConfig>("ws_min_duration_ms", c => c.WsMinDurationMs, (c, v) => c.WsMinDurationMs = v, "a finished task at least this long (or failed) is pushed to the page's live feed", AtLeast(0)),
        Int<DebugConfig>("event_min_duration_ms", c => c.EventMinDurationMs, (c, v) => c.EventMinDurationMs = v,
            "task attempts shorter than this are not stored, failed ones included (as in Drakkar); they still show in the UI",
            AtLeast(0)),
        Int<DebugConfig>("output_min_duration_ms", c => c.OutputMinDurationMs, (c, v) => c.OutputMinDurationMs = v,
            "stdout/stderr are stored only for attempts at least this long (failed attempts always keep " +
                "stderr)",
            AtLeast(0)),
        Str<DebugConfig>("prometheus_url", c => c.PrometheusUrl, (c, v) => c.PrometheusUrl = v, "your Prometheus; the UI shows graph links for this worker (none when empty)", WebLink),
        Str<DebugConfig>("prometheus_rate_interval", c => c.PrometheusRateInterval, (c, v) => c.PrometheusRateInterval = v,
            "the `rate()` window in those links"),
        Str<DebugConfig>("prometheus_worker_label", c => c.PrometheusWorkerLabel, (c, v) => c.PrometheusWorkerLabel = v,
            "the PromQL selector for this worker, e.g. `worker_id=\"{worker_id}\"`; empty: `instance=\"{host " +
                "name}:{metrics.port}\"`"),
        Str<DebugConfig>("prometheus_cluster_label", c => c.PrometheusClusterLabel, (c, v) => c.PrometheusClusterLabel = v,
            "the selector for the whole cluster, e.g. `cluster=\"{cluster_name}\"`; adds cluster-wide links"),
        new StringMapListField<DebugConfig>("custom_links", c => c.CustomLinks, (c, v) => c.CustomLinks = v)
        {
            Doc = "links on the page; entries with `name` and `url` are shown, `url` may use `{worker_id}`, " +
                "`{cluster_name}`, `{metrics_port}`, `{debug_port}`",
            AllowedNote = "each entry exactly `name` and `url`; `url` is `http://` or `https://`, with only those placeholders",
            EntryKeys = ["name", "url"],
            CheckValue = (key, value) => key == "url" ? CustomLinkUrl(value) : null,
        },
    ]);

    /// <summary>The link placeholders <c>debug.custom_links</c> URLs may use (<c>DebugLinks.Expand</c>).</summary>
    private static readonly string[] LinkPlaceholders = ["{worker_id}", "{cluster_name}", "{metrics_port}", "{debug_port}"];

    private static string? CustomLinkUrl(string url)
    {
        if (!url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            return $"must be an http:// or https:// URL (got '{SecretMasker.Mask(url)}')";
        foreach (System.Text.RegularExpressions.Match placeholder in System.Text.RegularExpressions.Regex.Matches(url, @"\{[^{}/]*\}"))
        {
            if (!LinkPlaceholders.Contains(placeholder.Value, StringComparer.Ordinal))
                return $"has an unknown placeholder {placeholder.Value} (known: {string.Join(", ", LinkPlaceholders)})";
        }
        return null;
    }


    private static readonly ObjectSpec<CachePeerSyncConfig> PeerSync = new(
    [
        Bool<CachePeerSyncConfig>("enabled", c => c.Enabled, (c, v) => c.Enabled = v,
            "pull entries from the other workers' files in `db_dir`"),
        Num<CachePeerSyncConfig>("interval_seconds", c => c.IntervalSeconds, (c, v) => c.IntervalSeconds = v,
            "how often to pull. A value set on one worker reaches another within about `flush_interval_seconds + " +
                "interval_seconds`",
            AtLeast(MinIntervalSeconds)),
        Int<CachePeerSyncConfig>("batch_size", c => c.BatchSize, (c, v) => c.BatchSize = v,
            "entries read from a peer's file per query; a cycle reads pages until the peer has nothing newer",
            AtLeast(1)),
        Num<CachePeerSyncConfig>("timeout_seconds", c => c.TimeoutSeconds, (c, v) => c.TimeoutSeconds = v,
            "bound on one peer in a cycle (opening and reading its file, waiting for its lock); a peer that overruns " +
                "or fails is logged and skipped until the next cycle",
            Above(0.0)),
        new ScalarField<CachePeerSyncConfig, double?>("cycle_deadline_seconds", c => c.CycleDeadlineSeconds,
            (c, v) => c.CycleDeadlineSeconds = v, OptionalNumber, AtLeastOrNull(0.1))
        {
            Doc = "bound on a whole cycle (`null`: 90% of `peer_sync.interval_seconds`); an overrun ends it as a failed " +
                "`cache.sync` run (`drakkar_periodic_task_runs_total{name=\"cache.sync\",status=\"error\"}`) and the next " +
                "runs on schedule",
            AllowedNote = "< `interval_seconds`",
        },
    ],
    (sync, check) =>
    {
        // The deadline exists to end a cycle before the next one is due; one at or past the interval never fires.
        if (sync.CycleDeadlineSeconds is { } deadline && deadline >= sync.IntervalSeconds)
            check.Fail("cycle_deadline_seconds", $"must be < interval_seconds ({sync.IntervalSeconds}) (got {deadline})");
    });

    private static readonly ObjectSpec<CacheConfig> Cache = new(
    [
        Bool<CacheConfig>("enabled", c => c.Enabled, (c, v) => c.Enabled = v,
            "`false`: `Cache` reads always miss and writes are dropped; no file is made"),
        Str<CacheConfig>("db_dir", c => c.DbDir, (c, v) => c.DbDir = v,
            "directory of the cache files (created at start); empty falls back to `debug.db_dir`. Workers that should " +
                "share entries must see the same directory (a shared volume)"),
        Num<CacheConfig>("flush_interval_seconds", c => c.FlushIntervalSeconds, (c, v) => c.FlushIntervalSeconds = v,
            "how often pending sets and deletes are written to the file (one transaction); also written at shutdown. " +
                "A crash loses at most this much",
            AtLeast(MinIntervalSeconds)),
        Num<CacheConfig>("cleanup_interval_seconds", c => c.CleanupIntervalSeconds, (c, v) => c.CleanupIntervalSeconds = v,
            "how often expired entries are removed from memory and the file (reads never return an expired entry in " +
                "between)",
            AtLeast(MinIntervalSeconds)),
        new ScalarField<CacheConfig, int?>("max_memory_entries", c => c.MaxMemoryEntries, (c, v) => c.MaxMemoryEntries = v,
            OptionalInteger, AtLeastOrNull(1))
        {
            Doc = "entries kept in memory (`null`: unbounded); past it the least recently used is dropped from memory and later " +
                "reads fall back to the file (a write not yet flushed is not lost: `Get…Async` still finds it until the flush " +
                "stores it, while `Peek` and `Contains`, memory only, may miss it)",
        },
        new ScalarField<CacheConfig, double?>("stale_file_hours", c => c.StaleFileHours, (c, v) => c.StaleFileHours = v,
            OptionalNumber, AtLeastOrNull(0.01), CenturyOfHoursOrNull)
        {
            Doc = "a cache file in the directory whose modification time is older than this belongs to a worker that is gone " +
                "(a running worker sets its file's time at start and at every cleanup): the next cleanup of any worker using the directory " +
                "deletes it, with its SQLite companions, if it is a regular file of this user and a cache database (it has the " +
                "`cache_owner` table; another program's file with such a name is left alone). This is what removes the " +
                "files of earlier runs without `WORKER_ID` (a new id, and file, at each start); peers have already pulled " +
                "its `cluster` and `global` entries. `null` keeps every file. A running worker's file is never deleted, however " +
                "old its time: each worker holds an advisory lock (`flock`) on `{worker_id}-cache.db.lock` while its cache is " +
                "open, a cleanup skips a file whose lock is held, and the kernel drops the lock when the process ends (kill -9 " +
                "included). Workers sharing a directory should still use the same value",
            AllowedNote = "> 2 × `cleanup_interval_seconds`",
        },
        new SectionField<CacheConfig, CachePeerSyncConfig>("peer_sync", c => c.PeerSync, PeerSync),
    ],
    (cache, check) =>
    {
        // A running worker shows it is alive only at its cleanups: a shorter staleness would delete live workers' files.
        if (cache.StaleFileHours is { } hours && hours * 3600 <= 2 * cache.CleanupIntervalSeconds)
            check.Fail("stale_file_hours", $"must be > 2 × cleanup_interval_seconds ({cache.CleanupIntervalSeconds} s), " +
                $"or a running worker's file could be deleted (got {hours} h)");
    });

    public static readonly ObjectSpec<DrakkarConfig> Root = new(
    [
        Str<DrakkarConfig>("worker_name_env", c => c.WorkerNameEnv, (c, v) => c.WorkerNameEnv = v,
            "variable holding the worker id; when unset or empty, an id `drakkar-` + 8 hex digits is generated"),
        Str<DrakkarConfig>("cluster_name", c => c.ClusterName, (c, v) => c.ClusterName = v, "logical cluster name"),
        Str<DrakkarConfig>("cluster_name_env", c => c.ClusterNameEnv, (c, v) => c.ClusterNameEnv = v,
            "variable holding the cluster name; when named and set it wins over `cluster_name`"),
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
        if (config.Cache.Enabled && config.Cache.DbDir.Trim().Length == 0 && config.Debug.DbDir.Trim().Length == 0)
            check.Fail("cache.db_dir", "must name a directory when cache.enabled is true and debug.db_dir is empty (the cache's file " +
                "needs one; an empty debug.db_dir only keeps the recorder in memory)");
        // The metrics endpoint listens on every interface by default, so one port cannot serve both: run would fail
        // naming metrics.port while the port is held by the worker's own UI.
        if (config.Debug.Enabled && config.Metrics.Enabled && config.Debug.Port == config.Metrics.Port)
            check.Fail("debug.port", $"must differ from metrics.port ({config.Metrics.Port}): the debug UI and the metrics " +
                "endpoint each listen on a port of their own");
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
