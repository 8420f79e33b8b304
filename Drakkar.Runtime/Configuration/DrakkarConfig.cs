namespace Drakkar;

// The configuration model. Keys (snake_case in YAML) and defaults follow Python Drakkar; see docs/configuration.md.

/// <summary>The whole worker configuration (<c>drakkar.yaml</c>).</summary>
public sealed class DrakkarConfig
{
    /// <summary>Environment variable holding the worker id (<c>WORKER_ID</c>); a generated id is used when unset.</summary>
    public string WorkerNameEnv { get; set; } = "WORKER_ID";
    /// <summary>Logical cluster name; the variable named by <see cref="ClusterNameEnv"/> overrides it when set.</summary>
    public string ClusterName { get; set; } = "";
    /// <summary>Environment variable holding the cluster name; when named and set, it wins over <see cref="ClusterName"/>.</summary>
    public string ClusterNameEnv { get; set; } = "";
    public KafkaConfig Kafka { get; set; } = new();
    public ExecutorConfig Executor { get; set; } = new();
    public SinksConfig Sinks { get; set; } = new();
    public DlqConfig Dlq { get; set; } = new();
    public MetricsConfig Metrics { get; set; } = new();
    public TelemetryConfig Telemetry { get; set; } = new();
    public LoggingConfig Logging { get; set; } = new();
    public DebugConfig Debug { get; set; } = new();
    public CacheConfig Cache { get; set; } = new();
}

public sealed class KafkaConfig
{
    public string Brokers { get; set; } = "localhost:9092";
    public string SourceTopic { get; set; } = "input-events";
    public string ConsumerGroup { get; set; } = "drakkar-workers";
    public int MaxPollIntervalMs { get; set; } = 300_000;
    public int SessionTimeoutMs { get; set; } = 45_000;
    public int HeartbeatIntervalMs { get; set; } = 3_000;
    /// <summary>
    /// The consumer group protocol: <c>classic</c> (join/sync rounds, cooperative-sticky assignment; every broker) or
    /// <c>consumer</c> (KIP-848: the broker assigns, partitions move one by one without a group-wide pause; Kafka 4.0+).
    /// </summary>
    public string GroupProtocol { get; set; } = "classic";

    /// <summary>True under <c>group_protocol: consumer</c>, written in any case, as the configuration accepts it.</summary>
    internal bool UsesConsumerProtocol => string.Equals(GroupProtocol.Trim(), "consumer", StringComparison.OrdinalIgnoreCase);
    /// <summary>Static membership (librdkafka <c>group.instance.id</c>); empty: dynamic membership.</summary>
    public string GroupInstanceId { get; set; } = "";
    /// <summary>plaintext, ssl, sasl_plaintext or sasl_ssl (librdkafka <c>security.protocol</c>), for every Kafka client of the worker.</summary>
    public string SecurityProtocol { get; set; } = "plaintext";
    /// <summary>PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (<c>sasl.mechanism</c>); required with a sasl_* protocol.</summary>
    public string SaslMechanism { get; set; } = "";
    public string SaslUsername { get; set; } = "";
    public string SaslPassword { get; set; } = "";
    /// <summary>PEM file of the CA certificates the brokers' certificates are checked against (<c>ssl.ca.location</c>); empty: the system's.</summary>
    public string SslCaLocation { get; set; } = "";
    /// <summary>Client certificate and key for mutual TLS (<c>ssl.certificate.location</c>, <c>ssl.key.location</c>, <c>ssl.key.password</c>).</summary>
    public string SslCertificateLocation { get; set; } = "";
    public string SslKeyLocation { get; set; } = "";
    public string SslKeyPassword { get; set; } = "";
    /// <summary>Whether the broker's certificate must name the host connected to (<c>ssl.endpoint.identification.algorithm</c> https).</summary>
    public bool SslVerifyHostname { get; set; } = true;
    /// <summary>Minimum spacing of offset commits per partition (revoke and shutdown always commit).</summary>
    public int CommitIntervalMs { get; set; } = 1_000;
    /// <summary>
    /// Exactly-once Kafka→Kafka: the Kafka sinks' records and the source offsets they answer are committed in one
    /// producer transaction per commit tick. Valid only when every sink is a Kafka sink on <see cref="Brokers"/>.
    /// </summary>
    public bool ExactlyOnce { get; set; }
    public string UiUrl { get; set; } = "";
    public string UiClusterName { get; set; } = "";
}

public sealed class ExecutorConfig
{
    /// <summary>The binary tasks run; a task's own BinaryPath wins. Null means every task must name one.</summary>
    public string? BinaryPath { get; set; }
    public Dictionary<string, string> Env { get; set; } = new(StringComparer.Ordinal);
    public bool EnvInheritParent { get; set; } = true;
    /// <summary>Globs of inherited variables to drop on top of the secret-name rule every inherited variable passes through.</summary>
    public List<string> EnvInheritDeny { get; set; } = ["DK_*"];
    public int MaxExecutors { get; set; } = 4;
    public int TaskTimeoutSeconds { get; set; } = 120;
    public int WindowSize { get; set; } = 100;
    public int MaxRetries { get; set; } = 3;
    /// <summary>The wait before an <c>OnError</c> → Retry re-runs a task: capped exponential backoff with jitter (<see cref="RetryBackoff"/>).</summary>
    public int RetryBackoffMs { get; set; } = 500;
    /// <summary>The longest wait between two runs of a retried task.</summary>
    public int RetryBackoffMaxMs { get; set; } = 30_000;
    public int DrainTimeoutSeconds { get; set; } = 30;
    public int BackpressureHighMultiplier { get; set; } = 32;
    public int BackpressureLowMultiplier { get; set; } = 4;
    /// <summary>Per-stream capture limit; output beyond it is truncated and the result says so.</summary>
    public int MaxOutputBytes { get; set; } = 16 * 1024 * 1024;
    /// <summary>One process per task, or long-lived processes that take tasks as frames (docs/executor-protocol.md).</summary>
    public ExecutorMode Mode { get; set; } = ExecutorMode.Spawn;
    /// <summary>Persistent mode: the arguments each long-lived process starts with (tasks' own args go in their requests).</summary>
    public List<string> ProcessArgs { get; set; } = [];
    /// <summary>Persistent mode: how long a new process has to print its ready line.</summary>
    public int ReadyTimeoutSeconds { get; set; } = 30;
    /// <summary>Persistent mode: a process is replaced after this many tasks; 0 keeps it for ever.</summary>
    public int MaxTasksPerProcess { get; set; }
    /// <summary>Persistent mode: a process whose resident memory exceeds this after a task is replaced; 0 never checks.</summary>
    public int MaxRssMb { get; set; }
    /// <summary>Persistent mode: the first wait before restarting after a process crashed or misbehaved; doubles per failure in a row.</summary>
    public int RestartBackoffMs { get; set; } = 100;
    /// <summary>Persistent mode: the longest wait between restarts.</summary>
    public int RestartBackoffMaxMs { get; set; } = 10_000;
}

/// <summary>How the executor runs tasks.</summary>
public enum ExecutorMode
{
    /// <summary>One new process per task (the binary's own argv, stdin, exit code).</summary>
    Spawn,
    /// <summary>Up to <c>max_executors</c> long-lived processes, each taking one framed request at a time.</summary>
    Persistent,
}

public sealed class SinksConfig
{
    public Dictionary<string, KafkaSinkConfig> Kafka { get; set; } = new(StringComparer.Ordinal);
    public Dictionary<string, PostgresSinkConfig> Postgres { get; set; } = new(StringComparer.Ordinal);
    public Dictionary<string, MongoSinkConfig> Mongo { get; set; } = new(StringComparer.Ordinal);
    public Dictionary<string, HttpSinkConfig> Http { get; set; } = new(StringComparer.Ordinal);
    public Dictionary<string, RedisSinkConfig> Redis { get; set; } = new(StringComparer.Ordinal);
    public Dictionary<string, FileSinkConfig> Filesystem { get; set; } = new(StringComparer.Ordinal);
    /// <summary>Plugin sinks: <c>custom.{kind}.{instance}</c> → the instance's settings, handed to the plugin.</summary>
    public Dictionary<string, Dictionary<string, CustomSinkConfig>> Custom { get; set; } = new(StringComparer.Ordinal);
    public CircuitBreakerConfig CircuitBreaker { get; set; } = new();
    /// <summary>
    /// Payloads handed to sinks and not yet settled, across all instances; at this many, consumption pauses until
    /// half of them are settled.
    /// </summary>
    public int MaxInflightPayloads { get; set; } = 20_000;
    /// <summary>The wait before an <c>OnDeliveryError</c> → Retry delivers again: capped exponential backoff with jitter (<see cref="RetryBackoff"/>).</summary>
    public int RetryBackoffMs { get; set; } = 500;
    /// <summary>The longest wait between two deliveries of a retried payload group.</summary>
    public int RetryBackoffMaxMs { get; set; } = 30_000;
}

/// <summary>
/// What every sink instance has: how its delivery queue packs payloads into batches (docs/performance.md, "Sizing
/// the delivery engine"), and its UI link.
/// </summary>
public abstract class SinkInstanceConfig
{
    /// <summary>The most payloads one delivery carries (payloads of one hook call are never split).</summary>
    public int BatchSize { get; set; } = 1000;
    /// <summary>How long a batch may wait to fill before it goes anyway; 0 sends whatever is queued at once.</summary>
    public int LingerMs { get; set; }
    /// <summary>What an outage (the destination unreachable, the circuit open) does to payloads.</summary>
    public OutagePolicy OnOutage { get; set; } = OutagePolicy.Pause;
    /// <summary>The longest one delivery attempt (one sink call) may take before it counts as a transient failure.</summary>
    public double AttemptTimeoutSeconds { get; set; } = 30;
    public string UiUrl { get; set; } = "";
}

/// <summary>What a sink instance does with payloads while its destination is unreachable.</summary>
public enum OutagePolicy
{
    /// <summary>Hold them (their messages stay uncommitted), pause consumption, probe, deliver once the destination is back.</summary>
    Pause,
    /// <summary>Send them to the DLQ once retries are spent or while the circuit is open (Python Drakkar's behaviour).</summary>
    Dlq,
}

public sealed class KafkaSinkConfig : SinkInstanceConfig
{
    /// <summary>librdkafka reports a record it could not deliver after <c>message.timeout.ms</c> (30 s): its own verdict comes first.</summary>
    public KafkaSinkConfig() => AttemptTimeoutSeconds = 45;

    public string Topic { get; set; } = "";
    /// <summary>Empty inherits <c>kafka.brokers</c>.</summary>
    public string Brokers { get; set; } = "";
    /// <summary>Broker idempotence (enable.idempotence); makes the sink idempotent for the retry contract.</summary>
    public bool Idempotent { get; set; }
}

public enum PostgresWriteMode
{
    /// <summary>Multi-row INSERT in one transaction per batch.</summary>
    Insert,
    /// <summary>Binary COPY per table in one transaction per batch.</summary>
    Bulk,
    /// <summary>INSERT … ON CONFLICT (on_conflict keys) DO UPDATE; idempotent.</summary>
    Upsert,
}

public sealed class PostgresSinkConfig : SinkInstanceConfig
{
    public string Dsn { get; set; } = "";
    public int PoolMin { get; set; } = 2;
    public int PoolMax { get; set; } = 10;
    public PostgresWriteMode Mode { get; set; } = PostgresWriteMode.Insert;
    /// <summary>Conflict key columns for <see cref="PostgresWriteMode.Upsert"/>.</summary>
    public List<string> OnConflict { get; set; } = [];
}

public sealed class MongoSinkConfig : SinkInstanceConfig
{
    /// <summary>The driver gives up selecting a server after 30 s: its own verdict comes first.</summary>
    public MongoSinkConfig() => AttemptTimeoutSeconds = 45;

    public string Uri { get; set; } = "";
    public string Database { get; set; } = "";
}

public sealed class HttpSinkConfig : SinkInstanceConfig
{
    /// <summary>
    /// Requests are one per payload, so a batch is a burst of concurrent requests: smaller by default. Its requests
    /// queue for <see cref="MaxConnections"/> and each may take <see cref="TimeoutSeconds"/> per try, so one call
    /// gets longer than other kinds'.
    /// </summary>
    public HttpSinkConfig()
    {
        BatchSize = 100;
        AttemptTimeoutSeconds = 300;
    }

    public string Url { get; set; } = "";
    public string Method { get; set; } = "POST";
    public int TimeoutSeconds { get; set; } = 30;
    public Dictionary<string, string> Headers { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>
    /// How many times the sink itself sends a payload's request again after a transient failure, with backoff, before
    /// the delivery engine hears of it: always for a request that was never sent (no connection could be opened), and
    /// for one that may have reached the endpoint only when <see cref="IdempotencyKey"/> lets the receiver drop repeats.
    /// </summary>
    public int MaxRetries { get; set; } = 3;
    /// <summary>
    /// Requests this instance has in flight at once, and so the most connections it keeps open (and reuses) to the
    /// endpoint, across every batch, isolation and probe of the instance.
    /// </summary>
    public int MaxConnections { get; set; } = 8;
    /// <summary>
    /// Sends an <c>Idempotency-Key</c> header derived from where the payload came from (consumer group, instance,
    /// topic, partition, offsets, hook, index), the same on every retry and on every redelivery of its messages.
    /// </summary>
    public bool IdempotencyKey { get; set; }
    /// <summary>
    /// Lets a host name that resolves to a loopback address be used. A loopback literal or <c>localhost</c> in the
    /// URL is always allowed: it says so explicitly.
    /// </summary>
    public bool AllowLoopback { get; set; }
}

public sealed class RedisSinkConfig : SinkInstanceConfig
{
    public string Url { get; set; } = "redis://localhost:6379/0";
    public string KeyPrefix { get; set; } = "";
    /// <summary>More <c>host:port</c> nodes beside the URL's: cluster seed nodes, or further sentinels.</summary>
    public List<string> Endpoints { get; set; } = [];
    /// <summary>The primary's service name when the URL and <see cref="Endpoints"/> are sentinels; empty for none.</summary>
    public string SentinelService { get; set; } = "";
    /// <summary>A PEM CA certificate to trust for <c>rediss://</c> besides the system's (a private CA).</summary>
    public string TlsCaFile { get; set; } = "";
}

public sealed class FileSinkConfig : SinkInstanceConfig
{
    public string BasePath { get; set; } = "";
}

/// <summary>
/// A plugin sink instance under <c>sinks.custom.{kind}.{instance}</c>: the delivery keys every instance has, bound
/// and applied by Drakkar, and the plugin's own keys in <see cref="Settings"/>, as strings.
/// </summary>
public sealed class CustomSinkConfig : SinkInstanceConfig
{
    /// <summary>A plugin's cost per call is unknown: batches stay moderate unless the instance says otherwise.</summary>
    public CustomSinkConfig() => BatchSize = 100;

    /// <summary>Every key of the instance except the delivery keys, flattened (<c>auth.user</c>, <c>hosts.0</c>).</summary>
    public Dictionary<string, string> Settings { get; set; } = new(StringComparer.Ordinal);
}

public sealed class CircuitBreakerConfig
{
    public int FailureThreshold { get; set; } = 5;
    public double CooldownSeconds { get; set; } = 30.0;
}

public sealed class DlqConfig
{
    /// <summary>Empty means <c>{kafka.source_topic}_dlq</c>.</summary>
    public string Topic { get; set; } = "";
    /// <summary>Empty inherits <c>kafka.brokers</c>.</summary>
    public string Brokers { get; set; } = "";
    /// <summary>The largest DLQ record written; bigger ones have their values cut, with a marker naming the source.</summary>
    public int MaxMessageBytes { get; set; } = 1_000_000;
}

public sealed class MetricsConfig
{
    public bool Enabled { get; set; } = true;
    public int Port { get; set; } = 9090;

    /// <summary>
    /// The address the endpoint listens on: every interface by default, so Kubernetes probes and Prometheus reach
    /// it; <c>127.0.0.1</c> keeps it on the machine.
    /// </summary>
    public string Host { get; set; } = "0.0.0.0";
}

/// <summary>Export of the worker's spans over OTLP/HTTP (protobuf); see docs/operations.md, "Traces".</summary>
public sealed class TelemetryConfig
{
    /// <summary>Whether spans are exported; they are only recorded (and <c>traceparent</c> propagated) while they are.</summary>
    public bool Traces { get; set; }

    /// <summary>The collector's base URL (<c>http://collector:4318</c>); spans go to <c>{otlp_endpoint}/v1/traces</c>.</summary>
    public string OtlpEndpoint { get; set; } = "";

    /// <summary>The <c>service.name</c> of exported spans; empty uses the worker id.</summary>
    public string ServiceName { get; set; } = "";
}

public enum LogFormat
{
    Json,
    Console,
}

public sealed class LoggingConfig
{
    public string Level { get; set; } = "INFO";
    public LogFormat Format { get; set; } = LogFormat.Json;
    /// <summary><c>stderr</c>, <c>stdout</c> or a file path (may use <c>{worker_id}</c>, <c>{cluster_name}</c>).</summary>
    public string Output { get; set; } = "stderr";
}

/// <summary>The debug web UI and flight recorder (docs/debug-ui.md).</summary>
public sealed class DebugConfig
{
    /// <summary>Off by default (Python Drakkar: on): a listening port and files on disk are the operator's choice.</summary>
    public bool Enabled { get; set; }
    public string Host { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 8080;
    /// <summary>Bearer token for the UI; empty disables auth. Surrounding whitespace is stripped at load.</summary>
    public string AuthToken { get; set; } = "";
    public List<string> AllowedWsOrigins { get; set; } = [];
    public string DebugUrl { get; set; } = "";
    public string DbDir { get; set; } = "/tmp";
    public bool StoreEvents { get; set; } = true;
    public bool StoreConfig { get; set; } = true;
    public bool StoreState { get; set; } = true;
    public int StateSyncIntervalSeconds { get; set; } = 10;
    public List<string> ExposeEnvVars { get; set; } = [];
    public int RotationIntervalMinutes { get; set; } = 60;
    public int RetentionHours { get; set; } = 24;
    public int RetentionMaxEvents { get; set; } = 100_000;
    public bool StoreOutput { get; set; } = true;
    public int FlushIntervalSeconds { get; set; } = 5;
    public int MaxBuffer { get; set; } = 50_000;
    public int MaxFlushRetries { get; set; } = 3;
    public int MaxUiRows { get; set; } = 5_000;
    public int LogMinDurationMs { get; set; } = 500;
    public int WsMinDurationMs { get; set; } = 500;
    public int EventMinDurationMs { get; set; }
    public int OutputMinDurationMs { get; set; } = 500;
    public string PrometheusUrl { get; set; } = "";
    public string PrometheusRateInterval { get; set; } = "5m";
    public string PrometheusWorkerLabel { get; set; } = "";
    public string PrometheusClusterLabel { get; set; } = "";
    /// <summary>Extra links shown in the UI; each entry is a small string map (e.g. <c>name</c>, <c>url</c>).</summary>
    public List<Dictionary<string, string>> CustomLinks { get; set; } = [];
}

/// <summary>Drakkar's handler cache settings (the cache itself is planned; the keys are accepted and validated).</summary>
public sealed class CacheConfig
{
    public bool Enabled { get; set; }
    /// <summary>Empty falls back to <c>debug.db_dir</c> when the cache starts.</summary>
    public string DbDir { get; set; } = "";
    public double FlushIntervalSeconds { get; set; } = 3.0;
    public double CleanupIntervalSeconds { get; set; } = 60.0;
    /// <summary>In-memory LRU cap; null (YAML <c>null</c>) means unbounded.</summary>
    public int? MaxMemoryEntries { get; set; } = 10_000;
    /// <summary>Cache files in the directory last written longer ago are deleted by the cleanup; null keeps them all.</summary>
    public double? StaleFileHours { get; set; } = 24.0;
    public CachePeerSyncConfig PeerSync { get; set; } = new();
}

/// <summary>How the handler cache pulls entries from sibling workers.</summary>
public sealed class CachePeerSyncConfig
{
    public bool Enabled { get; set; } = true;
    public double IntervalSeconds { get; set; } = 30.0;
    public int BatchSize { get; set; } = 500;
    public double TimeoutSeconds { get; set; } = 5.0;
    /// <summary>Wall-clock cap on one sync cycle; null means 90% of <see cref="IntervalSeconds"/>.</summary>
    public double? CycleDeadlineSeconds { get; set; }
}
