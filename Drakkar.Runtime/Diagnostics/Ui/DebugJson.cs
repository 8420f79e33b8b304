using System.Text.Json;
using Drakkar.Diagnostics.Recorder;
using Drakkar.Kafka;
using Drakkar.Observability.Http;
using Drakkar.Sinks;

namespace Drakkar.Diagnostics.Ui;

/// <summary>What the debug UI reads from the running worker; each member is called on the UI's threads.</summary>
internal sealed record WorkerView(
    Func<IReadOnlyList<PartitionProgress>> Partitions,
    Func<ExecutorView> Executor,
    Func<IReadOnlyList<SinkStats>> Sinks,
    Func<Readiness> Readiness);

/// <summary>Executor slots and the queue in front of them.</summary>
internal readonly record struct ExecutorView(int Slots, int Active, int Waiting, long Load, long LoadHigh, bool Paused, long InFlightPayloads, bool HoldingForOutage);

/// <summary>The JSON documents behind the debug page (hand-written with <see cref="Utf8JsonWriter"/>: no reflection, AOT-clean).</summary>
internal sealed class DebugJson(DrakkarConfig config, string workerId, WorkerView worker, FlightRecorder recorder, DateTimeOffset startedAt)
{
    private readonly Dictionary<string, string> _sinkUrls = DebugLinks.SinkUrls(config);
    private readonly int _rows = config.Debug.MaxUiRows;

    /// <summary>
    /// The environment variables <c>debug.expose_env_vars</c> names, with their values (unset ones omitted), masked as
    /// <c>check-config</c> masks: a variable named like a secret (<c>DB_PASSWORD</c>, <c>DATABASE_URL</c>) shows
    /// <c>***</c>, any other value has its URL credentials and secret-named parameters hidden.
    /// </summary>
    public static Dictionary<string, string> ExposedEnvironment(DebugConfig debug)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in debug.ExposeEnvVars)
        {
            if (Environment.GetEnvironmentVariable(name) is { } value)
                env[name] = SecretMasker.IsSecretName(name) ? SecretMasker.Masked : SecretMasker.Mask(value);
        }
        return env;
    }

    public static string EnvironmentJson(DebugConfig debug) => Write(w =>
    {
        w.WriteStartObject();
        foreach (var (name, value) in ExposedEnvironment(debug)) w.WriteString(name, value);
        w.WriteEndObject();
    });

    /// <summary>Worker identity, partitions, executor, sinks, recorder and links.</summary>
    public string State() => Write(w =>
    {
        w.WriteStartObject();
        WriteWorker(w);
        w.WriteStartArray("partitions");
        foreach (var p in worker.Partitions())
        {
            w.WriteStartObject();
            w.WriteString("topic", p.Topic);
            w.WriteNumber("partition", p.Partition);
            w.WriteNumber("committed", p.Committed);
            w.WriteNumber("last_consumed", p.LastConsumed);
            w.WriteNumber("high_watermark", p.HighWatermark);
            w.WriteNumber("lag", p.Lag);
            w.WriteNumber("in_flight", p.InFlight);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        var executor = worker.Executor();
        w.WriteStartObject("executor");
        w.WriteNumber("slots", executor.Slots);
        w.WriteNumber("active", executor.Active);
        w.WriteNumber("waiting", executor.Waiting);
        w.WriteNumber("load", executor.Load);
        w.WriteNumber("load_high", executor.LoadHigh);
        w.WriteBoolean("paused", executor.Paused);
        w.WriteNumber("in_flight_payloads", executor.InFlightPayloads);
        w.WriteBoolean("holding_for_outage", executor.HoldingForOutage);
        w.WriteEndObject();
        w.WriteStartArray("sinks");
        foreach (var s in worker.Sinks())
        {
            w.WriteStartObject();
            w.WriteString("kind", s.Kind);
            w.WriteString("name", s.Name);
            w.WriteBoolean("connected", s.Connected);
            w.WriteString("circuit", s.Circuit.ToString().ToLowerInvariant());
            w.WriteNumber("delivered", s.Delivered);
            w.WriteNumber("deliveries", s.Deliveries);
            w.WriteNumber("errors", s.Errors);
            w.WriteNumber("retries", s.Retries);
            w.WriteNumber("skipped", s.Skipped);
            w.WriteNumber("dead_lettered", s.DeadLettered);
            w.WriteString("last_error", s.LastError);
            w.WriteString("last_error_at", s.LastErrorAt?.ToString("O"));
            w.WriteString("last_delivery_at", s.LastDeliveryAt?.ToString("O"));
            if (s.LastDeliveryDuration is { } d) w.WriteNumber("last_delivery_ms", Math.Round(d.TotalMilliseconds, 3));
            w.WriteString("ui_url", _sinkUrls.GetValueOrDefault($"{s.Kind}/{s.Name}"));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("recorder");
        w.WriteString("database", recorder.DatabasePath);
        w.WriteNumber("dropped", recorder.Dropped);
        w.WriteEndObject();
        w.WriteStartObject("links");
        if (DebugLinks.KafkaUi(config) is { } kafka) WriteLink(w, "kafka", kafka);
        WriteLinks(w, "custom", DebugLinks.Custom(config, workerId));
        WriteLinks(w, "prometheus", DebugLinks.Prometheus(config, workerId));
        w.WriteEndObject();
        w.WriteEndObject();
    });

    /// <summary>Recent and slow task attempts with their output.</summary>
    public string Tasks() => Write(w =>
    {
        w.WriteStartObject();
        WriteEvents(w, "recent", recorder.RecentTasks(_rows));
        WriteEvents(w, "slow", recorder.SlowTasks(_rows));
        w.WriteEndObject();
    });

    public string DeadLetters() => Write(w =>
    {
        w.WriteStartObject();
        WriteEvents(w, "dead_letters", recorder.RecentDeadLetters(_rows));
        w.WriteEndObject();
    });

    public string Config() => Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("yaml", SecretMasker.ToMaskedYaml(config));
        w.WriteEndObject();
    });

    /// <summary>Live task events after <paramref name="afterSeq"/>, oldest first.</summary>
    public string LiveTasks(long afterSeq, out long lastSeq)
    {
        var tasks = recorder.LiveTasks(afterSeq, _rows);
        tasks.Reverse();
        lastSeq = tasks.Count > 0 ? tasks[^1].Seq : afterSeq;
        return tasks.Count == 0 ? "" : Write(w =>
        {
            w.WriteStartObject();
            WriteEvents(w, "tasks", tasks);
            w.WriteEndObject();
        });
    }

    private void WriteWorker(Utf8JsonWriter w)
    {
        var readiness = worker.Readiness();
        w.WriteStartObject("worker");
        w.WriteString("worker_id", workerId);
        w.WriteString("cluster_name", config.ClusterName);
        w.WriteString("consumer_group", config.Kafka.ConsumerGroup);
        w.WriteString("source_topic", config.Kafka.SourceTopic);
        w.WriteString("kafka_cluster", config.Kafka.UiClusterName);
        w.WriteString("version", Hosting.DrakkarVersion.Text);
        w.WriteString("started_at", startedAt.ToString("O"));
        w.WriteString("debug_url", SecretMasker.Mask(config.Debug.DebugUrl));
        w.WriteBoolean("ready", readiness.IsReady);
        w.WriteStartArray("not_ready");
        foreach (var reason in readiness.Reasons) w.WriteStringValue(reason);
        w.WriteEndArray();
        w.WriteStartObject("env");
        foreach (var (name, value) in ExposedEnvironment(config.Debug)) w.WriteString(name, value);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteEvents(Utf8JsonWriter w, string name, List<FlightEvent> events)
    {
        w.WriteStartArray(name);
        foreach (var e in events)
        {
            w.WriteStartObject();
            w.WriteNumber("seq", e.Seq);
            w.WriteString("at", e.At.ToString("O"));
            w.WriteString("kind", e.Kind);
            if (e.Topic is not null) w.WriteString("topic", e.Topic);
            if (e.Partition is { } partition) w.WriteNumber("partition", partition);
            if (e.Offset is { } offset) w.WriteNumber("offset", offset);
            if (e.TaskId is not null) w.WriteString("task_id", e.TaskId);
            if (e.Attempt is { } attempt) w.WriteNumber("attempt", attempt);
            if (e.Sink is not null) w.WriteString("sink", e.Sink);
            if (e.ExitCode is { } exit) w.WriteNumber("exit_code", exit);
            if (e.DurationMs is { } ms) w.WriteNumber("duration_ms", Math.Round(ms, 3));
            if (e.Count is { } count) w.WriteNumber("count", count);
            if (e.Detail is not null) w.WriteString("detail", e.Detail);
            if (e.Stdout is not null) w.WriteString("stdout", e.Stdout);
            if (e.Stderr is not null) w.WriteString("stderr", e.Stderr);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteLinks(Utf8JsonWriter w, string name, List<DebugLink> links)
    {
        w.WriteStartArray(name);
        foreach (var link in links) WriteLink(w, null, link);
        w.WriteEndArray();
    }

    /// <summary>A link object: the value of property <paramref name="name"/>, or an array item when null.</summary>
    private static void WriteLink(Utf8JsonWriter w, string? name, DebugLink link)
    {
        if (name is null) w.WriteStartObject();
        else w.WriteStartObject(name);
        w.WriteString("name", link.Name);
        w.WriteString("url", link.Url);
        w.WriteEndObject();
    }

    private static string Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(4096);
        // Read by the page's own script as JSON, never inlined into HTML: '+' of a time and non-ASCII text stay as they are.
        using (var writer = new Utf8JsonWriter(buffer, Serialization.JsonOutput.Compact))
            body(writer);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
