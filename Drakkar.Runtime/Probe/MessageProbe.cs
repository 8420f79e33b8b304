using System.Text;
using System.Text.Json;
using Drakkar.Configuration;
using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Microsoft.Extensions.Logging;

namespace Drakkar.Probe;

/// <summary>A record to probe, as read from Kafka or from a messages file.</summary>
internal sealed record ProbeInput(string Topic, int Partition, long Offset, byte[]? Key, byte[]? Value, DateTimeOffset Timestamp,
    IReadOnlyList<KeyValuePair<string, byte[]>> Headers);

/// <summary>
/// What a probe saw: every payload by sink instance, the payloads no instance takes, the would-be dead letters, why
/// a message could not be decoded as the handler's input type (by topic, partition and offset), and the task attempts
/// that failed.
/// </summary>
internal sealed record ProbeReport(IReadOnlyList<ProbeInput> Messages, ProbeDelivery Captured, int Unfinished,
    IReadOnlyDictionary<(string Topic, int Partition, long Offset), string> DecodeErrors, IReadOnlyList<ProbeTaskFailures.Failure> TaskFailures)
{
    /// <summary>How much of a failed attempt's stderr the report shows (the flight recorder keeps as much).</summary>
    internal const int StderrChars = 4096;

    /// <summary>Writes the report as indented JSON (the format docs/operations.md describes).</summary>
    public void WriteJson(Stream output, SinksConfig sinks)
    {
        using var json = new Utf8JsonWriter(output, Serialization.JsonOutput.Indented);
        json.WriteStartObject();
        json.WriteStartArray("messages");
        foreach (var message in Messages)
        {
            json.WriteStartObject();
            json.WriteString("topic", message.Topic);
            json.WriteNumber("partition", message.Partition);
            json.WriteNumber("offset", message.Offset);
            if (DecodeErrors.TryGetValue((message.Topic, message.Partition, message.Offset), out var decodeError))
                json.WriteString("decode_error", decodeError);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteNumber("unfinished", Unfinished);
        json.WriteStartArray("task_failures");
        foreach (var (partition, error) in TaskFailures.OrderBy(f => f.Partition).ThenBy(f => f.Error.Task.SourceOffsets.Count > 0 ? f.Error.Task.SourceOffsets[0] : -1)
                     .ThenBy(f => f.Error.Attempt))
        {
            json.WriteStartObject();
            json.WriteNumber("partition", partition);
            WriteOffsets(json, error.Task.SourceOffsets);
            json.WriteString("task_id", error.Task.TaskId);
            json.WriteNumber("attempt", error.Attempt);
            json.WriteString("error", SecretMasker.Mask(error.Message));
            if (error.ExitCode is { } exitCode) json.WriteNumber("exit_code", exitCode);
            else json.WriteNull("exit_code");
            var stderr = SecretMasker.Mask(error.Stderr);
            json.WriteString("stderr", stderr.Length > StderrChars ? stderr[..StderrChars] : stderr);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("sinks");
        foreach (var instance in Captured.Routed.GroupBy(r => (r.Kind, r.Instance)).OrderBy(g => g.Key.Kind, StringComparer.Ordinal)
                     .ThenBy(g => g.Key.Instance, StringComparer.Ordinal))
        {
            json.WriteStartObject();
            json.WriteString("kind", instance.Key.Kind);
            json.WriteString("instance", instance.Key.Instance);
            json.WriteStartArray("payloads");
            foreach (var (_, _, probed) in Ordered(instance)) WritePayload(json, probed, sinks, instance.Key.Instance);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("unroutable");
        foreach (var (probed, error) in Captured.Unroutable.OrderBy(u => u.Payload.Offsets[0]))
        {
            json.WriteStartObject();
            json.WriteString("kind", probed.Payload.Kind == SinkKind.Custom ? ((CustomPayload)probed.Payload).CustomKind : SinkKinds.ConfigName(probed.Payload.Kind));
            json.WriteString("error", error);
            json.WritePropertyName("payload");
            WritePayload(json, probed, sinks, probed.Payload.Sink);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("dead_letters");
        foreach (var letter in Captured.DeadLetters.OrderBy(d => (d.Partition, d.Offsets[0])))
        {
            json.WriteStartObject();
            json.WriteNumber("partition", letter.Partition);
            WriteOffsets(json, letter.Offsets);
            json.WriteString("error", letter.Error);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>Payloads in a stable order: by partition and first offset, then hook, then as returned.</summary>
    private static IEnumerable<(string, string, ProbedPayload)> Ordered(IEnumerable<(string, string, ProbedPayload Payload)> routed) =>
        routed.Select((r, i) => (r, i)).OrderBy(x => x.r.Payload.Partition).ThenBy(x => x.r.Payload.Offsets.Count > 0 ? x.r.Payload.Offsets[0] : -1)
            .ThenBy(x => x.r.Payload.Hook, StringComparer.Ordinal).ThenBy(x => x.i).Select(x => x.r);

    private static void WriteOffsets(Utf8JsonWriter json, IReadOnlyList<long> offsets)
    {
        json.WriteStartArray("offsets");
        foreach (var offset in offsets) json.WriteNumberValue(offset);
        json.WriteEndArray();
    }

    /// <summary>One payload with what its sink kind makes of it (topic and key, table, collection, Redis key, path).</summary>
    private static void WritePayload(Utf8JsonWriter json, ProbedPayload probed, SinksConfig sinks, string instance)
    {
        json.WriteStartObject();
        json.WriteString("hook", probed.Hook);
        json.WriteNumber("partition", probed.Partition);
        WriteOffsets(json, probed.Offsets);
        json.WriteString("type", probed.Payload.Data.TypeName);
        if (probed.Payload is KafkaPayload && sinks.Kafka.TryGetValue(instance, out var topic)) json.WriteString("topic", topic.Topic);
        PayloadTarget.WriteMembers(json, probed.Payload,
            probed.Payload is RedisPayload && sinks.Redis.TryGetValue(instance, out var redis) ? redis.KeyPrefix : "");
        // Written only when it has a JSON form: one without would throw halfway through this writer's object and lose
        // the whole report.
        if (probed.JsonProblem is null)
        {
            json.WritePropertyName("data");
            probed.Payload.Data.WriteJson(json);
        }
        else
        {
            json.WriteNull("data");
            // A sink that does not write JSON (PostgreSQL, MongoDB) may still take it: then it is no error.
            if (probed.Refusal is null) json.WriteString("data_note", $"not shown: it has no JSON form ({probed.JsonProblem})");
        }
        if (probed.Refusal is { } error) json.WriteString("error", error);
        json.WriteEndObject();
    }
}

/// <summary>
/// Runs messages through the worker's own pipeline (Arrange → executor → OnTaskComplete / OnError →
/// OnMessageComplete → OnWindowComplete, one <see cref="PartitionPipeline"/> per partition, windows of
/// <c>window_size</c>) with a <see cref="ProbeDelivery"/> in place of the sinks, so the report shows what every sink
/// would receive while nothing is delivered or committed. The handler gets <see cref="DrakkarCache.Disabled"/>: a
/// probe never changes the cache. Reusable by any front end (the <c>probe</c> command, a UI action).
/// </summary>
internal static partial class MessageProbe
{
    public static async Task<ProbeReport> RunAsync(DrakkarHandlerBase handler, DrakkarConfig config, IReadOnlyList<ProbeInput> inputs,
        ITaskExecutor executor, ILoggerFactory loggers, TimeSpan timeout, CancellationToken cancellationToken)
    {
        handler.Cache = DrakkarCache.Disabled;
        var captured = new ProbeDelivery(new ProbeRouting(config.Sinks));
        var failures = new ProbeTaskFailures();
        using var metrics = new DrakkarMetrics { Events = failures };
        var load = WorkerLoad.From(config.Executor, captured);
        var settings = PipelineSettings.From(config.Executor);
        var pipelines = new List<PartitionPipeline>();
        var logger = loggers.CreateLogger("Drakkar.Probe");
        var decodeErrors = new Dictionary<(string, int, long), string>();
        foreach (var partition in inputs.GroupBy(i => (i.Topic, i.Partition)))
        {
            var pipeline = new PartitionPipeline(partition.Key.Topic, partition.Key.Partition, handler, executor, captured, settings, load, metrics,
                logger);
            pipelines.Add(pipeline);
            pipeline.Start();
            // The offset tracker takes each offset once and in order.
            foreach (var input in partition.DistinctBy(i => i.Offset).OrderBy(i => i.Offset))
            {
                var message = handler.CreateMessage(input.Topic, input.Partition, input.Offset, input.Key, input.Value, input.Timestamp, input.Headers);
                // As a running worker does: the message still goes on with a null payload; the report and the log say why.
                if (message.DecodeError is { } error)
                {
                    var masked = SecretMasker.Mask(error);
                    decodeErrors[(input.Topic, input.Partition, input.Offset)] = masked;
                    LogUndecodable(logger, input.Topic, input.Partition, input.Offset, input.Value?.Length ?? 0, masked);
                }
                pipeline.Enqueue(message);
            }
        }
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(timeout);
        try
        {
            while (pipelines.Any(p => p.OpenMessages > 0)) await Task.Delay(10, bounded.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Out of time or interrupted: report what finished; the rest counts as unfinished.
        }
        var unfinished = pipelines.Sum(p => p.OpenMessages);
        await Task.WhenAll(pipelines.Select(p => p.DrainAsync(TimeSpan.FromSeconds(1)))).ConfigureAwait(false);
        return new ProbeReport(inputs, captured, unfinished, decodeErrors, failures.All);
    }

    /// <summary>
    /// <see cref="RunAsync"/> with an executor of the probe's own (made by <paramref name="newExecutor"/> with metrics
    /// nobody exports, disposed after), bounded by the time every task could take with all its retries, plus 10 s (at
    /// most the longest delay a timer takes, about 49.7 days).
    /// </summary>
    public static async Task<ProbeReport> RunWithOwnExecutorAsync(DrakkarHandlerBase handler, DrakkarConfig config, IReadOnlyList<ProbeInput> inputs,
        Func<DrakkarConfig, DrakkarMetrics, ILoggerFactory, ITaskExecutor> newExecutor, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        using var metrics = new DrakkarMetrics();
        var executor = newExecutor(config, metrics, loggers);
        try
        {
            // In double: each key fits a timer, their product may not (max_retries has no upper bound), and an int wraps.
            var bound = TimeSpan.FromSeconds(Math.Min((double)config.Executor.TaskTimeoutSeconds * (config.Executor.MaxRetries + 1.0) + 10, ConfigRules.MaxTimerSeconds));
            return await RunAsync(handler, config, inputs, executor, loggers, bound, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await DisposeOwnedAsync(executor).ConfigureAwait(false);
        }
    }

    /// <summary>Disposes what a probe made for itself (its executor, the UI probe's handler), whichever way it is disposable.</summary>
    public static async ValueTask DisposeOwnedAsync(object? part)
    {
        switch (part)
        {
            case IAsyncDisposable disposable: await disposable.DisposeAsync().ConfigureAwait(false); break;
            case IDisposable disposable: disposable.Dispose(); break;
        }
    }

    /// <summary>Reads <paramref name="count"/> records from one partition by assignment: no group join, no commit.</summary>
    public static List<ProbeInput> ReadKafka(DrakkarConfig config, string topic, int partition, long offset, int count, CancellationToken cancellationToken)
    {
        using var reader = new Cli.SourceRecordReader(config.Kafka.Brokers, config.Kafka);
        return [.. reader.ReadFrom(topic, partition, offset, count, cancellationToken).Select(record => new ProbeInput(record.Topic, record.Partition.Value,
            record.Offset.Value, record.Message.Key, record.Message.Value, record.Message.Timestamp.UtcDateTime,
            Kafka.KafkaHeaders.Of(record.Message.Headers)))];
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Undecodable message {Topic}[{Partition}]@{Offset} ({Bytes} bytes): {Error}; it reaches Arrange with a null payload")]
    private static partial void LogUndecodable(ILogger logger, string topic, int partition, long offset, int bytes, string error);
}

/// <summary>The task attempts of a probe that failed, as the pipeline reports every attempt (through <see cref="Diagnostics.IWorkerEvents"/>).</summary>
internal sealed class ProbeTaskFailures : Diagnostics.IWorkerEvents
{
    internal readonly record struct Failure(int Partition, ExecutorError Error);

    private readonly System.Collections.Concurrent.ConcurrentQueue<Failure> _failures = new();

    public IReadOnlyList<Failure> All => [.. _failures];

    public bool IsOn => true;

    public void TaskFinished(ExecutorTask task, int partition, int attempt, in Execution.ExecutorOutcome outcome)
    {
        if (outcome.Error is { } error) _failures.Enqueue(new Failure(partition, error));
    }
}
