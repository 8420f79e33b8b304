using System.Globalization;
using Confluent.Kafka;
using Drakkar.Pipeline;
using Drakkar.Observability.Metrics;
using Microsoft.Extensions.Logging;

namespace Drakkar.Probe;

/// <summary>What a probe request from the debug UI gets: an HTTP status and a JSON body (the report, or an error).</summary>
internal readonly record struct ProbeAnswer(int Status, string Json);

/// <summary>
/// The debug UI's probe action inside a running worker: reads records of one partition by assignment (no group join,
/// no commit) and runs them through a fresh instance of the worker's handler (made as the host makes the worker's, its
/// <c>OnReady</c> called, the cache disabled, disposed after when disposable) and an executor of its own, with every payload captured instead of
/// delivered: the worker's handler, executor slots, sinks, offsets, metrics and recorder are untouched. One probe at a
/// time; a second request while one runs is refused (409).
/// </summary>
internal sealed partial class ProbeRunner(
    Func<DrakkarHandlerBase> newHandler,
    DrakkarConfig config,
    Func<DrakkarConfig, DrakkarMetrics, ILoggerFactory, ITaskExecutor> newExecutor,
    ILoggerFactory loggers)
{
    /// <summary>The most records one probe reads.</summary>
    public const int MaxCount = 100;

    private readonly SemaphoreSlim _one = new(1, 1);
    private readonly ILogger _logger = loggers.CreateLogger("Drakkar.Probe");

    /// <summary>Probes the records a request's query names: <c>partition</c>, <c>offset</c>, optional <c>count</c> (1) and <c>topic</c> (the source topic).</summary>
    public async Task<ProbeAnswer> RunAsync(IReadOnlyDictionary<string, string> query, CancellationToken cancellationToken)
    {
        if (Parse(query, out var topic, out var partition, out var offset, out var count) is { } invalid) return Error(400, invalid);
        if (!_one.Wait(0)) return Error(409, "another probe is running; try again when it has finished");
        try
        {
            List<ProbeInput> messages;
            try
            {
                messages = await Task.Run(() => MessageProbe.ReadKafka(config, topic, partition, offset, count, cancellationToken), cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (Cli.SourceReadException e)
            {
                return Error(e.NotFound ? 404 : 502, e.Message);
            }
            catch (KafkaException e)
            {
                return Error(502, $"reading {topic}[{partition}]@{offset} failed: {SecretMasker.Mask(e.Message)}");
            }
            // The position exists (the reader checked the watermarks); nothing arrived within its read time.
            if (messages.Count == 0) return Error(502, $"no record of {topic}[{partition}]@{offset} arrived within the read time; try again");

            LogProbing(_logger, topic, partition, offset, messages.Count);
            try
            {
                return await ProbeAsync(messages, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogProbeFailed(_logger, e);
                return Error(500, $"the probe failed: {SecretMasker.Mask(e.Message)}");
            }
        }
        finally
        {
            _one.Release();
        }
    }

    private async Task<ProbeAnswer> ProbeAsync(List<ProbeInput> messages, CancellationToken cancellationToken)
    {
        var handler = newHandler();
        ProbeReport report;
        try
        {
            await handler.OnReady(config, null).ConfigureAwait(false);
            report = await MessageProbe.RunWithOwnExecutorAsync(handler, config, messages, newExecutor, loggers, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await MessageProbe.DisposeOwnedAsync(handler).ConfigureAwait(false);
        }
        using var body = new MemoryStream();
        report.WriteJson(body, config.Sinks);
        return new ProbeAnswer(200, System.Text.Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length));
    }

    private string? Parse(IReadOnlyDictionary<string, string> query, out string topic, out int partition, out long offset, out int count)
    {
        topic = query.TryGetValue("topic", out var t) && t.Trim().Length > 0 ? t.Trim() : config.Kafka.SourceTopic;
        partition = 0;
        offset = 0;
        count = 1;
        if (!query.TryGetValue("partition", out var p) || !int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out partition))
            return "partition must be given as a whole number ≥ 0 (?partition=0&offset=42)";
        if (!query.TryGetValue("offset", out var o) || !long.TryParse(o, NumberStyles.None, CultureInfo.InvariantCulture, out offset))
            return "offset must be given as a whole number ≥ 0 (?partition=0&offset=42)";
        if (query.TryGetValue("count", out var c) && (!int.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out count) || count is < 1 or > MaxCount))
            return $"count must be a whole number from 1 to {MaxCount}";
        return null;
    }

    private static ProbeAnswer Error(int status, string message)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("error", message);
            json.WriteEndObject();
        }
        return new ProbeAnswer(status, System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Probe from the debug UI failed")]
    private static partial void LogProbeFailed(ILogger logger, Exception error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Probe from the debug UI: {Topic}[{Partition}]@{Offset}, {Count} record(s); nothing is delivered or committed")]
    private static partial void LogProbing(ILogger logger, string topic, int partition, long offset, int count);
}
