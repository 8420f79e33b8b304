using System.Diagnostics;
using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Drakkar.Sinks.Dlq;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Drakkar.Sinks;

/// <summary>
/// Routes every payload of a <see cref="CollectResult"/> to its sink instance and settles it (SPEC S1–S7, S15, O4):
/// groups deliver concurrently, each with its own fast retry, <c>OnDeliveryError</c> decision, circuit breaker and
/// DLQ route. <see cref="IPayloadDelivery.DeliverAsync"/> returns only once every payload is delivered, dead-lettered
/// or skipped, and throws nothing but <see cref="OperationCanceledException"/>.
/// </summary>
/// <remarks>
/// Host lifecycle: <see cref="Create"/> (validates config against the handler's declared sinks) →
/// <see cref="StartAsync"/> (connects everything concurrently, fails fast) → deliveries →
/// <see cref="FlushAsync"/> per partition before each commit when batching sinks exist → <see cref="CloseAsync"/>.
/// </remarks>
public sealed partial class SinkManager : IPayloadDelivery, IAsyncDisposable
{
    /// <summary>The <see cref="SinkStats.LastError"/> and DLQ error text when the breaker turned a batch away.</summary>
    public const string CircuitOpenError = "circuit open";

    private readonly SinkSlot[] _slots;
    private readonly Dictionary<SinkKey, SinkSlot> _byKey = [];
    private readonly Dictionary<(SinkKind, string?), SinkSlot[]> _byKind = [];
    private readonly IDeadLetterQueue _dlq;
    private readonly SinkManagerOptions _options;
    private readonly DrakkarMetrics _metrics;
    private readonly SinkSecretMasker _masker;
    private readonly ILogger _logger;

    internal SinkManager(IEnumerable<ISink> sinks, IDeadLetterQueue dlq, SinkManagerOptions options, DrakkarMetrics metrics,
        ILoggerFactory loggers, SinkSecretMasker? masker = null)
    {
        _dlq = dlq;
        _options = options;
        _metrics = metrics;
        _masker = masker ?? new SinkSecretMasker();
        _logger = loggers.CreateLogger("Drakkar.Sinks");
        var slots = new List<SinkSlot>();
        foreach (var sink in sinks)
        {
            var key = SinkKey.Of(sink);
            if (_byKey.ContainsKey(key))
                throw new SinkConfigurationException($"Two sinks are both {key}; instance names must be unique per kind.");
            var slot = new SinkSlot(sink, key, options, metrics);
            _byKey[key] = slot;
            slots.Add(slot);
        }
        _slots = [.. slots];
        foreach (var group in _slots.GroupBy(s => (s.Key.Kind, s.Key.CustomKind)))
            _byKind[group.Key] = [.. group];
    }

    /// <summary>
    /// Builds the manager from configuration: checks that every sink the handler declares is configured and that
    /// every plugin kind in config is registered (reporting every problem at once), then creates each instance and
    /// the Kafka DLQ (<c>dlq.topic</c>, default <c>{sourceTopic}_dlq</c>).
    /// </summary>
    public static SinkManager Create(DrakkarConfig config, IReadOnlyList<SinkDeclaration> declared, SinkManagerOptions options,
        DrakkarMetrics metrics, ILoggerFactory loggers, SinkRegistry? plugins = null, string? sourceTopic = null)
    {
        var masker = new SinkSecretMasker();
        var sinks = SinkFactory.Build(config, declared, plugins ?? new SinkRegistry(), masker, loggers);
        var dlq = new KafkaDeadLetterQueue(
            KafkaDeadLetterQueue.TopicFor(config.Dlq, sourceTopic ?? config.Kafka.SourceTopic),
            KafkaDeadLetterQueue.BrokersFor(config.Dlq, config.Kafka),
            metrics, loggers.CreateLogger("Drakkar.Sinks.Dlq"), masker, options.Delay);
        masker.AddCredentialsOf(KafkaDeadLetterQueue.BrokersFor(config.Dlq, config.Kafka));
        return new SinkManager(sinks, dlq, options, metrics, loggers, masker);
    }

    /// <summary><see cref="Create"/> with the handler's declared sinks, its <c>OnDeliveryError</c> and <c>executor.max_retries</c>.</summary>
    public static SinkManager ForHandler(DrakkarHandlerBase handler, DrakkarConfig config, DrakkarMetrics metrics, ILoggerFactory loggers,
        SinkRegistry? plugins = null, ISinkBackpressureListener? backpressure = null) =>
        Create(config, handler.DeclaredSinks, new SinkManagerOptions
        {
            OnDeliveryError = handler.OnDeliveryError,
            MaxRetries = config.Executor.MaxRetries,
            CircuitBreaker = config.Sinks.CircuitBreaker,
            Backpressure = backpressure,
        }, metrics, loggers, plugins);

    /// <summary>The configured sink instances.</summary>
    public IReadOnlyList<ISink> Sinks => [.. _slots.Select(s => s.Sink)];

    /// <summary>True when some sink buffers until <see cref="FlushAsync"/>; without one, flushing can be skipped.</summary>
    public bool HasBatchingSinks => _slots.Any(s => s.Sink is IBatchingSink);

    /// <summary>Where dead letters go (the DLQ topic).</summary>
    public string DeadLetterDestination => _dlq.Destination;

    /// <summary>The first PostgreSQL sink's data source, for <c>OnReady</c>; null when there is none or it is not connected.</summary>
    public NpgsqlDataSource? PostgresDataSource =>
        _slots.Select(s => s.Sink).OfType<Postgres.PostgresSink>().FirstOrDefault()?.DataSource;

    /// <summary>Readiness: every sink connected by <see cref="StartAsync"/> and still holding its connection.</summary>
    public bool IsReady => _slots.All(s => s.Connected && s.Sink.IsConnected);

    /// <summary>The <c>kind:name</c> of every sink that keeps the worker from being ready.</summary>
    public IReadOnlyList<string> NotReadyReasons =>
        [.. _slots.Where(s => !(s.Connected && s.Sink.IsConnected)).Select(s => $"{s.Key.KindName}:{s.Key.Name}")];

    /// <summary>Per-sink counters and state.</summary>
    public IReadOnlyList<SinkStats> Stats =>
        [.. _slots.Select(s => s.Counters.Snapshot(s.Key.KindName, s.Key.Name, s.Connected && s.Sink.IsConnected, s.Breaker.State))];

    public SinkStats StatsOf(string kind, string name) =>
        Stats.FirstOrDefault(s => s.Kind == kind && s.Name == name)
        ?? throw new ArgumentException($"No sink {kind}/{name} is configured.");

    /// <summary>
    /// Connects every sink and the DLQ concurrently (SPEC S7). If any fails, the ones that connected are closed
    /// (close errors logged) and a <see cref="SinkStartupException"/> names every sink that failed and why.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var connects = _slots.Select(s => ConnectAsync(s, cancellationToken)).ToArray();
        var dlq = ConnectDlqAsync(cancellationToken);
        try
        {
            await Task.WhenAll([.. connects, dlq]).ConfigureAwait(false);
            return;
        }
        catch (Exception)
        {
            // Every connect finished (WhenAll waits for all); collect each failure below.
        }
        if (cancellationToken.IsCancellationRequested)
        {
            await CloseConnectedAsync().ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }

        var failures = new List<string>();
        Exception? first = null;
        for (var i = 0; i < _slots.Length; i++)
        {
            if (connects[i].Exception?.GetBaseException() is not { } error) continue;
            first ??= error;
            failures.Add($"{_slots[i].Key.ConfigPath}: {_masker.Apply(error.Message)}");
        }
        if (dlq.Exception?.GetBaseException() is { } dlqError)
        {
            first ??= dlqError;
            failures.Add($"dlq ({_dlq.Destination}): {_masker.Apply(dlqError.Message)}");
        }
        await CloseConnectedAsync().ConfigureAwait(false);
        throw new SinkStartupException(
            $"The worker cannot start: {failures.Count} sink(s) failed to connect.\n  " + string.Join("\n  ", failures), first!);
    }

    ValueTask IAsyncDisposable.DisposeAsync() => new(CloseAsync());

    /// <summary>Closes every sink and the DLQ. Errors are logged, never thrown (SPEC S7).</summary>
    public async Task CloseAsync()
    {
        await CloseConnectedAsync().ConfigureAwait(false);
        try
        {
            await _dlq.CloseAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogCloseFailed(_logger, "dlq", _dlq.Destination, _masker.Apply(e.Message));
        }
    }

    /// <summary>
    /// Writes what batching sinks buffered for the partition (SPEC O9). Call it before committing the partition's
    /// offsets; when it throws, do not commit: rewind the partition to its committed offset and reprocess. A
    /// <see cref="SinkBackpressureException"/> also says how long to pause the partition first.
    /// </summary>
    public async Task FlushAsync(string topic, int partition, CancellationToken cancellationToken)
    {
        var batching = _slots.Where(s => s.Sink is IBatchingSink).ToArray();
        if (batching.Length == 0) return;
        var flushes = batching.Select(s => FlushOneAsync((IBatchingSink)s.Sink, topic, partition, cancellationToken)).ToArray();
        try
        {
            await Task.WhenAll(flushes).ConfigureAwait(false);
            return;
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // Inspect each flush below.
        }

        TimeSpan? retryAfter = null;
        var failures = new List<string>();
        for (var i = 0; i < batching.Length; i++)
        {
            var slot = batching[i];
            switch (flushes[i].Exception?.GetBaseException())
            {
                case SinkBackpressureException backpressure:
                    retryAfter = retryAfter is { } r && r > backpressure.RetryAfter ? r : backpressure.RetryAfter;
                    _options.Backpressure?.OnBackpressure(new SinkBackpressure(topic, partition, backpressure.RetryAfter, slot.Key.KindName, slot.Key.Name));
                    LogBackpressure(_logger, slot.Key.KindName, slot.Key.Name, topic, partition, backpressure.RetryAfter.TotalSeconds);
                    break;
                case { } error:
                    var text = _masker.Apply(Describe(error));
                    slot.Counters.Failed(text, _options.Time.GetUtcNow());
                    slot.Errors.Increment();
                    failures.Add($"{slot.Key.KindName}/{slot.Key.Name}: {text}");
                    break;
            }
        }
        if (failures.Count > 0)
            throw new SinkTransientException($"Flush of {topic}[{partition}] failed; do not commit, reprocess from the committed offset: {string.Join("; ", failures)}");
        throw new SinkBackpressureException(retryAfter!.Value, $"Flush of {topic}[{partition}] hit backpressure; pause and retry after {retryAfter.Value.TotalSeconds:0.###}s");
    }

    // Async wrapper so a flush that throws before its first await still lands in its task, not in the caller.
    private static async Task FlushOneAsync(IBatchingSink sink, string topic, int partition, CancellationToken cancellationToken) =>
        await sink.FlushAsync(topic, partition, cancellationToken).ConfigureAwait(false);

    /// <summary>Drops what batching sinks buffered for a partition that was revoked or rewound.</summary>
    public void Discard(string topic, int partition)
    {
        foreach (var slot in _slots)
            if (slot.Sink is IBatchingSink batching) batching.Discard(topic, partition);
    }

    ValueTask IPayloadDelivery.DeliverAsync(CollectResult result, DeliveryOrigin origin, CancellationToken cancellationToken) =>
        DeliverAsync(result, origin, cancellationToken);

    ValueTask IPayloadDelivery.DeadLetterAsync(DeliveryOrigin origin, string error, CancellationToken cancellationToken) =>
        DeadLetterAsync(origin, error, cancellationToken);

    /// <inheritdoc cref="IPayloadDelivery.DeliverAsync"/>
    internal async ValueTask DeliverAsync(CollectResult result, DeliveryOrigin origin, CancellationToken cancellationToken)
    {
        if (result.Count == 0) return;
        var groups = new Dictionary<SinkSlot, List<SinkPayload>>();
        Dictionary<(string Kind, string Name, string Error), List<SinkPayload>>? unroutable = null;
        foreach (var payload in result.All())
        {
            if (TryRoute(payload, out var slot, out var error))
            {
                if (!groups.TryGetValue(slot, out var list)) groups[slot] = list = [];
                list.Add(payload);
            }
            else
            {
                unroutable ??= [];
                var key = (SinkKey.KindNameOf(payload), payload.Sink, error);
                if (!unroutable.TryGetValue(key, out var list)) unroutable[key] = list = [];
                list.Add(payload);
            }
        }

        if (groups.Count == 1 && unroutable is null)
        {
            var (slot, payloads) = groups.First();
            await DeliverGroupAsync(slot, payloads, origin, cancellationToken).ConfigureAwait(false);
            return;
        }
        var work = new List<Task>(groups.Count + (unroutable?.Count ?? 0));
        foreach (var (slot, payloads) in groups) work.Add(DeliverGroupAsync(slot, payloads, origin, cancellationToken));
        if (unroutable is not null)
            foreach (var ((kind, name, error), payloads) in unroutable)
                work.Add(DeadLetterUnroutableAsync(kind, name, error, payloads, origin, cancellationToken));
        await Task.WhenAll(work).ConfigureAwait(false);
    }

    /// <inheritdoc cref="IPayloadDelivery.DeadLetterAsync"/>
    internal async ValueTask DeadLetterAsync(DeliveryOrigin origin, string error, CancellationToken cancellationToken)
    {
        var letter = new DeadLetter("", "", _masker.Apply(error), [], 1, origin.Topic, origin.Partition, origin.Messages, _options.Time.GetUtcNow());
        await _dlq.WriteAsync(letter, cancellationToken).ConfigureAwait(false);
        LogSourceDeadLettered(_logger, origin.Topic, origin.Partition, origin.Messages.Count, letter.Error);
    }

    private bool TryRoute(SinkPayload payload, out SinkSlot slot, out string error)
    {
        var customKind = payload is CustomPayload custom ? custom.CustomKind : null;
        var kindName = customKind ?? SinkKinds.ConfigName(payload.Kind);
        if (payload.Sink.Length > 0)
        {
            if (_byKey.TryGetValue(new SinkKey(payload.Kind, customKind, payload.Sink), out slot!))
            {
                error = "";
                return true;
            }
            var known = _byKind.TryGetValue((payload.Kind, customKind), out var same) ? string.Join(", ", same.Select(s => s.Key.Name)) : "";
            error = known.Length == 0
                ? $"no {kindName} sink named '{payload.Sink}' is configured (and no {kindName} sink at all); add {SinkKey.ConfigPathOf(payload.Kind, customKind, payload.Sink)}"
                : $"no {kindName} sink named '{payload.Sink}' is configured (configured: {known}); a {payload.Data.TypeName} payload named it";
            return false;
        }
        if (_byKind.TryGetValue((payload.Kind, customKind), out var candidates) && candidates.Length == 1)
        {
            slot = candidates[0];
            error = "";
            return true;
        }
        slot = null!;
        error = candidates is null
            ? $"a {payload.Data.TypeName} payload targets the {kindName} sink, but none is configured (sinks.{(customKind is null ? kindName : "custom." + customKind)})"
            : $"{candidates.Length} {kindName} sinks are configured ({string.Join(", ", candidates.Select(s => s.Key.Name))}) but a {payload.Data.TypeName} payload names none; set its sink name";
        return false;
    }

    private async Task DeliverGroupAsync(SinkSlot slot, List<SinkPayload> payloads, DeliveryOrigin origin, CancellationToken cancellationToken)
    {
        var admission = slot.Breaker.Admit();
        if (admission == CircuitAdmission.Reject)
        {
            slot.Counters.Failed(CircuitOpenError, _options.Time.GetUtcNow());
            LogCircuitOpen(_logger, slot.Key.KindName, slot.Key.Name, payloads.Count);
            await DeadLetterGroupAsync(slot, payloads, CircuitOpenError, 0, origin, cancellationToken).ConfigureAwait(false);
            return;
        }

        var batch = new SinkBatch(origin.Topic, origin.Partition, payloads);
        var verdict = false;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                var started = Stopwatch.GetTimestamp();
                var failure = await TryDeliverAsync(slot, batch, cancellationToken).ConfigureAwait(false);
                if (failure is null)
                {
                    var elapsed = Stopwatch.GetElapsedTime(started);
                    slot.Breaker.RecordSuccess();
                    verdict = true;
                    slot.Counters.Delivered(payloads.Count, _options.Time.GetUtcNow(), elapsed);
                    slot.PayloadsDelivered.Add(payloads.Count);
                    _metrics.SinkDeliverDuration.Observe(elapsed.TotalSeconds, slot.Key.KindName, slot.Key.Name);
                    return;
                }

                var error = _masker.Apply(Describe(failure));
                slot.Counters.Failed(error, _options.Time.GetUtcNow());
                slot.Errors.Increment();
                LogDeliveryFailed(_logger, slot.Key.KindName, slot.Key.Name, payloads.Count, attempt, error);

                var action = await DecideAsync(slot, payloads, error, attempt).ConfigureAwait(false);
                if (action == DeliveryAction.Retry && attempt <= _options.MaxRetries)
                {
                    slot.Counters.Retried();
                    slot.Retries.Increment();
                    continue;
                }
                if (action == DeliveryAction.Skip)
                {
                    // The handler's choice, not a verdict on the sink's health: the breaker is not told.
                    slot.Counters.Skipped(payloads.Count);
                    slot.Skipped.Add(payloads.Count);
                    LogSkipped(_logger, slot.Key.KindName, slot.Key.Name, payloads.Count, error);
                    return;
                }
                slot.Breaker.RecordFailure();
                verdict = true;
                await DeadLetterGroupAsync(slot, payloads, error, attempt, origin, cancellationToken).ConfigureAwait(false);
                return;
            }
        }
        finally
        {
            // A probe that ended without a verdict (skipped or cancelled) must free its slot, or the circuit would
            // stay half-open with a phantom probe forever.
            if (admission == CircuitAdmission.Probe && !verdict) slot.Breaker.ReleaseProbe();
        }
    }

    /// <summary>One attempt as the breaker sees it: the sink call plus fast retries (idempotent sinks, transient errors) and backpressure waits.</summary>
    private async Task<Exception?> TryDeliverAsync(SinkSlot slot, SinkBatch batch, CancellationToken cancellationToken)
    {
        var fastRetries = 0;
        while (true)
        {
            try
            {
                await slot.Sink.DeliverAsync(batch, cancellationToken).ConfigureAwait(false);
                return null;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (SinkBackpressureException backpressure)
            {
                _options.Backpressure?.OnBackpressure(
                    new SinkBackpressure(batch.Topic, batch.Partition, backpressure.RetryAfter, slot.Key.KindName, slot.Key.Name));
                LogBackpressure(_logger, slot.Key.KindName, slot.Key.Name, batch.Topic, batch.Partition, backpressure.RetryAfter.TotalSeconds);
                await _options.Delay(backpressure.RetryAfter, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                if (!slot.Sink.IsIdempotent || fastRetries >= SinkManagerOptions.FastRetryBackoff.Length || !TransientErrors.IsTransient(e))
                    return e;
                var backoff = SinkManagerOptions.FastRetryBackoff[fastRetries++];
                slot.Counters.Retried();
                slot.Retries.Increment();
                LogFastRetry(_logger, slot.Key.KindName, slot.Key.Name, fastRetries, backoff.TotalMilliseconds, _masker.Apply(e.Message));
                await _options.Delay(backoff, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<DeliveryAction> DecideAsync(SinkSlot slot, List<SinkPayload> payloads, string error, int attempt)
    {
        try
        {
            return await _options.OnDeliveryError(new DeliveryError(slot.Key.Kind, slot.Key.Name, error, payloads, attempt)
            {
                CustomKind = slot.Key.CustomKind,
            }).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // A throwing hook must not lose the payloads: fall back to the default decision.
            LogHookFailed(_logger, e, slot.Key.KindName, slot.Key.Name);
            return DeliveryAction.Dlq;
        }
    }

    private async Task DeadLetterGroupAsync(SinkSlot slot, List<SinkPayload> payloads, string error, int attempts, DeliveryOrigin origin,
        CancellationToken cancellationToken)
    {
        var letter = new DeadLetter(slot.Key.KindName, slot.Key.Name, error, payloads, attempts, origin.Topic, origin.Partition, origin.Messages,
            _options.Time.GetUtcNow());
        await _dlq.WriteAsync(letter, cancellationToken).ConfigureAwait(false);
        slot.Counters.DeadLettered(payloads.Count);
        slot.DeadLettered.Add(payloads.Count);
        LogDeadLettered(_logger, slot.Key.KindName, slot.Key.Name, payloads.Count, attempts, _dlq.Destination);
    }

    private async Task DeadLetterUnroutableAsync(string kind, string name, string error, List<SinkPayload> payloads, DeliveryOrigin origin,
        CancellationToken cancellationToken)
    {
        LogUnroutable(_logger, kind, name, payloads.Count, error);
        var letter = new DeadLetter(kind, name, error, payloads, 0, origin.Topic, origin.Partition, origin.Messages, _options.Time.GetUtcNow());
        await _dlq.WriteAsync(letter, cancellationToken).ConfigureAwait(false);
        _metrics.SinkDlqMessages.WithLabels(kind, name).Add(payloads.Count);
    }

    private async Task ConnectAsync(SinkSlot slot, CancellationToken cancellationToken)
    {
        await slot.Sink.ConnectAsync(cancellationToken).ConfigureAwait(false);
        slot.Connected = true;
        LogConnected(_logger, slot.Key.KindName, slot.Key.Name);
    }

    private async Task ConnectDlqAsync(CancellationToken cancellationToken) =>
        await _dlq.ConnectAsync(cancellationToken).ConfigureAwait(false);

    private async Task CloseConnectedAsync()
    {
        await Task.WhenAll(_slots.Where(s => s.Connected).Select(async slot =>
        {
            try
            {
                await slot.Sink.CloseAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                LogCloseFailed(_logger, slot.Key.KindName, slot.Key.Name, _masker.Apply(e.Message));
            }
            finally
            {
                slot.Connected = false;
            }
        })).ConfigureAwait(false);
    }

    /// <summary>The failure text handed to the hook, stats and the DLQ: the message, with the cause when it adds something.</summary>
    private static string Describe(Exception error)
    {
        var text = error is SinkTransientException or SinkRoutingException or SinkDeliveryException
            ? error.Message
            : $"{error.GetType().Name}: {error.Message}";
        if (error.InnerException is { } inner && !text.Contains(inner.Message, StringComparison.Ordinal))
            text += $" ({inner.GetType().Name}: {inner.Message})";
        return text;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sink {SinkKind}/{SinkName} connected")]
    private static partial void LogConnected(ILogger logger, string sinkKind, string sinkName);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closing sink {SinkKind}/{SinkName} failed: {Error}")]
    private static partial void LogCloseFailed(ILogger logger, string sinkKind, string sinkName, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName} failed to take {Count} payload(s) on attempt {Attempt}: {Error}")]
    private static partial void LogDeliveryFailed(ILogger logger, string sinkKind, string sinkName, int count, int attempt, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Sink {SinkKind}/{SinkName} transient failure, fast retry {Retry} in {BackoffMs} ms: {Error}")]
    private static partial void LogFastRetry(ILogger logger, string sinkKind, string sinkName, int retry, double backoffMs, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName}: circuit open, {Count} payload(s) go straight to the DLQ")]
    private static partial void LogCircuitOpen(ILogger logger, string sinkKind, string sinkName, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName}: handler skipped {Count} payload(s) after: {Error}")]
    private static partial void LogSkipped(ILogger logger, string sinkKind, string sinkName, int count, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName}: {Count} payload(s) written to the DLQ {Topic} after {Attempts} attempt(s)")]
    private static partial void LogDeadLettered(ILogger logger, string sinkKind, string sinkName, int count, int attempts, string topic);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} {SinkKind} payload(s) for sink '{SinkName}' cannot be routed and go to the DLQ: {Error}")]
    private static partial void LogUnroutable(ILogger logger, string sinkKind, string sinkName, int count, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} source message(s) of {Topic}[{Partition}] written to the DLQ: {Error}")]
    private static partial void LogSourceDeadLettered(ILogger logger, string topic, int partition, int count, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName} asked {Topic}[{Partition}] to back off for {Seconds}s")]
    private static partial void LogBackpressure(ILogger logger, string sinkKind, string sinkName, string topic, int partition, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "OnDeliveryError threw for sink {SinkKind}/{SinkName}; the payloads go to the DLQ")]
    private static partial void LogHookFailed(ILogger logger, Exception error, string sinkKind, string sinkName);
}
