using System.Diagnostics;
using Drakkar.Observability.Metrics;
using Drakkar.Observability.Tracing;
using Drakkar.Pipeline;
using Drakkar.Sinks.Delivery;
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
internal sealed partial class SinkManager : IPayloadDelivery, IAsyncDisposable
{
    /// <summary>The <see cref="SinkStats.LastError"/> and DLQ error text when the breaker turned a batch away.</summary>
    public const string CircuitOpenError = "circuit open";

    /// <summary>The sink label of DLQ metrics for payloads that named no configured sink (names a handler computed are not labels).</summary>
    internal const string UnroutableLabel = "unroutable";

    private readonly SinkSlot[] _slots;
    private readonly InstanceDelivery[] _instances;
    private readonly Dictionary<SinkKey, InstanceDelivery> _byKey = [];
    private readonly Dictionary<(SinkKind, string?), InstanceDelivery[]> _byKind = [];
    private readonly CancellationTokenSource _closing = new();
    private long _inFlight;
    private readonly IDeadLetterQueue _dlq;
    private readonly Kafka.KafkaTransaction? _transaction;
    private readonly SinkManagerOptions _options;
    private readonly DrakkarMetrics _metrics;
    private readonly SinkSecretMasker _masker;
    private readonly ILogger _logger;

    internal SinkManager(IEnumerable<ISink> sinks, IDeadLetterQueue dlq, SinkManagerOptions options, DrakkarMetrics metrics,
        ILoggerFactory loggers, SinkSecretMasker? masker = null, Kafka.KafkaTransaction? transaction = null)
    {
        _dlq = dlq;
        _transaction = transaction;
        _options = options;
        _metrics = metrics;
        _masker = masker ?? new SinkSecretMasker();
        _logger = loggers.CreateLogger("Drakkar.Sinks");
        var instances = new List<InstanceDelivery>();
        foreach (var sink in sinks)
        {
            var key = SinkKey.Of(sink);
            if (_byKey.ContainsKey(key))
                throw new SinkConfigurationException($"Two sinks are both {key}; instance names must be unique per kind.");
            var instance = new InstanceDelivery(new SinkSlot(sink, key, options, metrics), dlq, options, metrics, _masker, _logger, _closing.Token);
            _byKey[key] = instance;
            instances.Add(instance);
        }
        _instances = [.. instances];
        _slots = [.. instances.Select(i => i.Slot)];
        foreach (var group in _instances.GroupBy(i => (i.Slot.Key.Kind, i.Slot.Key.CustomKind)))
            _byKind[group.Key] = [.. group];
    }

    /// <summary>
    /// Builds the manager from configuration: checks that every sink the handler declares is configured and that
    /// every configured kind is registered (reporting every problem at once), then creates each instance and
    /// the Kafka DLQ (<c>dlq.topic</c>, default <c>{sourceTopic}_dlq</c>).
    /// </summary>
    public static SinkManager Create(DrakkarConfig config, IReadOnlyList<SinkDeclaration> declared, SinkManagerOptions options,
        DrakkarMetrics metrics, ILoggerFactory loggers, SinkRegistry? registry = null, string? sourceTopic = null)
    {
        var masker = SinkSecretMasker.For(config);
        var sinks = (registry ?? new SinkRegistry()).Build(config, declared, masker, loggers);
        var dlq = new KafkaDeadLetterQueue(
            KafkaDeadLetterQueue.TopicFor(config.Dlq, sourceTopic ?? config.Kafka.SourceTopic),
            KafkaDeadLetterQueue.BrokersFor(config.Dlq, config.Kafka),
            metrics, loggers.CreateLogger("Drakkar.Sinks.Dlq"), masker, options.Delay, maxRecordBytes: config.Dlq.MaxMessageBytes, security: config.Kafka);
        masker.Add(config.Kafka.SaslPassword);
        masker.Add(config.Kafka.SslKeyPassword);
        masker.AddCredentialsOf(KafkaDeadLetterQueue.BrokersFor(config.Dlq, config.Kafka));
        return new SinkManager(sinks, dlq, options, metrics, loggers, masker, ExactlyOnceTransaction(config, sinks, options, loggers, masker));
    }

    /// <summary>
    /// Under <c>kafka.exactly_once</c>: the worker's one transactional producer, which every Kafka sink stages its
    /// records in (configuration validation already ensured every sink is a Kafka sink on <c>kafka.brokers</c>).
    /// </summary>
    private static Kafka.KafkaTransaction? ExactlyOnceTransaction(DrakkarConfig config, List<ISink> sinks, SinkManagerOptions options,
        ILoggerFactory loggers, SinkSecretMasker masker)
    {
        if (!config.Kafka.ExactlyOnce) return null;
        var transaction = new Kafka.KafkaTransaction(config.Kafka.Brokers,
            Kafka.KafkaTransaction.IdFor(config.Kafka.ConsumerGroup, options.WorkerId ?? WorkerIdentity.GenerateWorkerId()),
            loggers.CreateLogger("Drakkar.Sinks.Kafka.Transaction"), masker);
        foreach (var sink in sinks.OfType<Kafka.KafkaSink>()) sink.StageInto(transaction);
        return transaction;
    }

    /// <summary>
    /// <see cref="Create"/> with the handler's declared sinks, its <c>OnDeliveryError</c>, <c>executor.max_retries</c>
    /// and the delivery engine's settings from <c>sinks</c>.
    /// </summary>
    public static SinkManager ForHandler(DrakkarHandlerBase handler, DrakkarConfig config, DrakkarMetrics metrics, ILoggerFactory loggers,
        SinkRegistry? registry = null, string? workerId = null) =>
        Create(config, handler.DeclaredSinks, new SinkManagerOptions
        {
            OnDeliveryError = handler.OnDeliveryError,
            MaxRetries = config.Executor.MaxRetries,
            RetryBackoff = RetryBackoffOf(config),
            CircuitBreaker = config.Sinks.CircuitBreaker,
            MaxInFlightPayloads = config.Sinks.MaxInflightPayloads,
            Batching = SinkRegistry.Batching(config.Sinks),
            WorkerId = workerId,
        }, metrics, loggers, registry);

    /// <summary>The wait before an <c>OnDeliveryError</c> → Retry re-delivers: <c>sinks.retry_backoff_ms</c> and <c>retry_backoff_max_ms</c>.</summary>
    internal static RetryBackoff RetryBackoffOf(DrakkarConfig config) =>
        RetryBackoff.FromMilliseconds(config.Sinks.RetryBackoffMs, config.Sinks.RetryBackoffMaxMs);

    Kafka.KafkaTransaction? IPayloadDelivery.Transaction => _transaction;

    /// <summary>The configured sink instances.</summary>
    public IReadOnlyList<ISink> Sinks => [.. _slots.Select(s => s.Sink)];

    /// <summary>True when some sink buffers until <see cref="FlushAsync"/>; without one, flushing can be skipped.</summary>
    public bool HasBatchingSinks => _slots.Any(s => s.Sink is IBatchingSink);

    /// <summary>Where dead letters go (the DLQ topic).</summary>
    public string DeadLetterDestination => _dlq.Destination;

    /// <summary>The first PostgreSQL sink's data source, for <c>OnReady</c>; null when there is none or it is not connected.</summary>
    public NpgsqlDataSource? PostgresDataSource =>
        _slots.Select(s => s.Sink).OfType<Postgres.PostgresSink>().FirstOrDefault()?.DataSource;

    /// <summary>
    /// Why each sink that keeps the worker from being ready does: it is not connected (never was, or lost its
    /// connection), or its circuit is open because its destination keeps failing. A sink without a standing
    /// connection (PostgreSQL's pool, HTTP) shows an outage only through its circuit.
    /// </summary>
    public IReadOnlyList<string> NotReadyReasons => [.. _slots.Select(NotReadyReason).OfType<string>()];

    /// <summary>Readiness as far as the sinks go: none has a <see cref="NotReadyReasons">reason</see>.</summary>
    public bool IsReady => _slots.All(slot => NotReadyReason(slot) is null);

    private static string? NotReadyReason(SinkSlot slot)
    {
        var sink = $"sink {slot.Key.KindName}:{slot.Key.Name}";
        if (!(slot.Connected && slot.Sink.IsConnected)) return $"{sink} is not connected";
        return slot.Breaker.State switch
        {
            CircuitState.Open => $"{sink} is unreachable: its circuit is open after consecutive failures",
            CircuitState.HalfOpen => $"{sink} is unreachable: its circuit is probing the destination after consecutive failures",
            _ => null,
        };
    }

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
        var transaction = _transaction is { } exactlyOnce ? Task.Run(exactlyOnce.Connect, cancellationToken) : Task.CompletedTask;
        try
        {
            await Task.WhenAll([.. connects, dlq, transaction]).ConfigureAwait(false);
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
        if (transaction.Exception?.GetBaseException() is { } transactionError)
        {
            first ??= transactionError;
            failures.Add($"kafka.exactly_once (transactional id {_transaction!.TransactionalId}): {_masker.Apply(transactionError.Message)}");
        }
        await CloseConnectedAsync().ConfigureAwait(false);
        throw new SinkStartupException(
            $"{failures.Count} sink(s) failed to connect:\n  " + string.Join("\n  ", failures), first!);
    }

    ValueTask IAsyncDisposable.DisposeAsync() => new(CloseAsync());

    /// <summary>How long closing waits for queued payloads to be delivered before it gives them up (uncommitted).</summary>
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Delivers what is still queued (for at most a few seconds; what is left stays uncommitted), then closes every
    /// sink and the DLQ. Errors are logged, never thrown (SPEC S7).
    /// </summary>
    public async Task CloseAsync()
    {
        if (_closing.IsCancellationRequested) return;
        var queues = Task.WhenAll(_instances.Select(i => i.CompleteAsync()));
        if (await Task.WhenAny(queues, Task.Delay(CloseGrace)).ConfigureAwait(false) != queues)
        {
            LogCloseGaveUp(_logger, CloseGrace.TotalSeconds, _instances.Sum(i => i.QueuedPayloads));
        }
        await _closing.CancelAsync().ConfigureAwait(false);
        try
        {
            await queues.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogCloseFailed(_logger, "delivery", "queues", _masker.Apply(e.Message));
        }
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
                    LogBackpressure(_logger, slot.Key.KindName, slot.Key.Name, topic, partition, backpressure.RetryAfter.TotalSeconds);
                    break;
                case { } error:
                    var text = _masker.Apply(InstanceDelivery.Describe(error));
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
        _transaction?.Discard(partition);
    }

    ValueTask IPayloadDelivery.DeliverAsync(CollectResult result, DeliveryOrigin origin, CancellationToken cancellationToken) =>
        DeliverAsync(result, origin, cancellationToken);

    void IPayloadDelivery.Submit(CollectResult result, DeliveryOrigin origin, CancellationToken abandoned, Action<bool, object?> settled, object? state) =>
        Submit(result, origin, abandoned, settled, state);

    ValueTask IPayloadDelivery.DeadLetterAsync(DeliveryOrigin origin, string error, CancellationToken cancellationToken) =>
        DeadLetterAsync(origin, error, cancellationToken);

    /// <inheritdoc cref="IPayloadDelivery.BlockedPartitions"/>
    public IReadOnlyDictionary<(string Topic, int Partition), string> BlockedPartitions => _dlq.BlockedPartitions;

    /// <summary>Payloads handed over and not yet settled, across every sink instance.</summary>
    public long InFlightPayloads => Interlocked.Read(ref _inFlight);

    /// <inheritdoc cref="IPayloadDelivery.HoldingForOutage"/>
    public bool HoldingForOutage
    {
        get
        {
            foreach (var instance in _instances)
                if (instance.Holding) return true;
            return false;
        }
    }

    /// <inheritdoc cref="IPayloadDelivery.MaxInFlightPayloads"/>
    public long MaxInFlightPayloads => _options.MaxInFlightPayloads;

    /// <summary>
    /// Queues every payload of <paramref name="result"/> on its sink instance's delivery queue; the returned task
    /// completes once every one is settled (delivered, dead-lettered or skipped), and is cancelled when
    /// <paramref name="cancellationToken"/> (the partition's work being abandoned) fires before that.
    /// </summary>
    internal ValueTask DeliverAsync(CollectResult result, DeliveryOrigin origin, CancellationToken cancellationToken)
    {
        if (result.Count == 0) return ValueTask.CompletedTask;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Submit(result, origin, cancellationToken, (settled, _) =>
        {
            if (settled) done.TrySetResult();
            else done.TrySetCanceled(cancellationToken.IsCancellationRequested ? cancellationToken : _closing.Token);
        }, null);
        return new ValueTask(done.Task);
    }

    /// <summary>A hook call's payloads are settled or dropped: they no longer count as in flight.</summary>
    internal void Finished(int payloads) => Interlocked.Add(ref _inFlight, -payloads);

    /// <inheritdoc cref="IPayloadDelivery.Submit"/>
    internal void Submit(CollectResult result, DeliveryOrigin origin, CancellationToken abandoned, Action<bool, object?> settled, object? state)
    {
        var count = result.Count;
        if (count == 0)
        {
            settled(true, state);
            return;
        }
        // Most hook calls target one instance: one list, and a dictionary only when a second instance shows up.
        InstanceDelivery? only = null;
        List<SinkPayload>? onlyPayloads = null;
        Dictionary<InstanceDelivery, List<SinkPayload>>? routed = null;
        Dictionary<(string Kind, string Name, string Error), List<SinkPayload>>? unroutable = null;
        for (var kind = 0; kind < CollectResult.KindLists; kind++)
        {
            if (result.ListAt(kind) is not { } payloads) continue;
            for (var i = 0; i < payloads.Count; i++)
            {
                var payload = payloads[i];
                if (TryRoute(payload, out var instance, out var error))
                {
                    if (only is null || only == instance)
                    {
                        only = instance;
                        (onlyPayloads ??= new List<SinkPayload>(count)).Add(payload);
                        continue;
                    }
                    routed ??= new() { [only] = onlyPayloads! };
                    if (!routed.TryGetValue(instance, out var list)) routed[instance] = list = [];
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
        }
        var groups = routed?.Count ?? (only is null ? 0 : 1);

        Interlocked.Add(ref _inFlight, count);
        var settlement = new Settlement(groups + (unroutable?.Count ?? 0), count, this, settled, state);
        if (routed is not null)
            foreach (var (instance, payloads) in routed) instance.Enqueue(Group(instance.Slot.Key.KindName, instance.Slot.Key.Name, payloads));
        else if (only is not null)
            only.Enqueue(Group(only.Slot.Key.KindName, only.Slot.Key.Name, onlyPayloads!));
        if (unroutable is not null)
            foreach (var ((kind, name, error), payloads) in unroutable)
                _ = DeadLetterUnroutableAsync(kind, name, error, Group(kind, name, payloads));

        PayloadGroup Group(string kind, string name, List<SinkPayload> payloads) =>
            new(payloads, origin, settlement, abandoned, PipelineTracing.StartDelivery(kind, name, payloads.Count, origin.Parent));
    }

    /// <inheritdoc cref="IPayloadDelivery.DeadLetterAsync"/>
    internal async ValueTask DeadLetterAsync(DeliveryOrigin origin, string error, CancellationToken cancellationToken)
    {
        var letter = new DeadLetter("", "", _masker.Apply(error), [], 1, origin.Topic, origin.Partition, origin.Messages, _options.Time.GetUtcNow());
        await _dlq.WriteAsync(letter, cancellationToken).ConfigureAwait(false);
        LogSourceDeadLettered(_logger, origin.Topic, origin.Partition, origin.Messages.Count, letter.Error);
    }

    private bool TryRoute(SinkPayload payload, out InstanceDelivery instance, out string error)
    {
        var customKind = payload is CustomPayload custom ? custom.CustomKind : null;
        // Named only for the error texts: routing a payload must not look its kind up.
        string KindName() => customKind ?? SinkKinds.ConfigName(payload.Kind);
        if (payload.Sink.Length > 0)
        {
            if (_byKey.TryGetValue(new SinkKey(payload.Kind, customKind, payload.Sink), out instance!))
            {
                error = "";
                return true;
            }
            var known = _byKind.TryGetValue((payload.Kind, customKind), out var same) ? string.Join(", ", same.Select(s => s.Slot.Key.Name)) : "";
            var kindName = KindName();
            error = known.Length == 0
                ? $"no {kindName} sink named '{payload.Sink}' is configured (and no {kindName} sink at all); add {SinkKey.ConfigPathOf(payload.Kind, customKind, payload.Sink)}"
                : $"no {kindName} sink named '{payload.Sink}' is configured (configured: {known}); a {payload.Data.TypeName} payload named it";
            return false;
        }
        if (_byKind.TryGetValue((payload.Kind, customKind), out var candidates) && candidates.Length == 1)
        {
            instance = candidates[0];
            error = "";
            return true;
        }
        instance = null!;
        var kind = KindName();
        error = candidates is null
            ? $"a {payload.Data.TypeName} payload targets the {kind} sink, but none is configured (sinks.{(customKind is null ? kind : "custom." + customKind)})"
            : $"{candidates.Length} {kind} sinks are configured ({string.Join(", ", candidates.Select(s => s.Slot.Key.Name))}) but a {payload.Data.TypeName} payload names none; set its sink name";
        return false;
    }

    /// <summary>A payload's kind as a metric label: a built-in kind or a configured plugin kind, else <c>unknown</c>.</summary>
    private string KnownKindLabel(string kind) =>
        SinkKey.BuiltInKind(kind) is not null || _byKind.Keys.Any(k => k.Item2 == kind) ? kind : "unknown";

    private async Task DeadLetterUnroutableAsync(string kind, string name, string error, PayloadGroup group)
    {
        try
        {
            LogUnroutable(_logger, kind, name, group.Count, error);
            var origin = group.Origin;
            var letter = new DeadLetter(kind, name, error, group.Payloads, 0, origin.Topic, origin.Partition, origin.Messages, _options.Time.GetUtcNow());
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(group.Abandoned, _closing.Token);
            await _dlq.WriteAsync(letter, stop.Token).ConfigureAwait(false);
            group.Outcome("dead_lettered", error);
            // The label is the payload's sink name only when a sink of that kind and name exists; anything else a
            // handler computed would make the label set unbounded.
            _metrics.SinkDlqMessages.WithLabels(KnownKindLabel(kind), UnroutableLabel).Add(group.Count);
            group.Settle();
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            group.Drop();
        }
    }

    private async Task ConnectAsync(SinkSlot slot, CancellationToken cancellationToken)
    {
        await slot.Sink.ConnectAsync(cancellationToken).ConfigureAwait(false);
        slot.Connected = true;
        LogReady(_logger, slot.Key.KindName, slot.Key.Name);
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
        _transaction?.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sink {SinkKind}/{SinkName} ready")]
    private static partial void LogReady(ILogger logger, string sinkKind, string sinkName);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closing: payloads still queued after {Seconds}s ({Count}) are given up; their offsets stay uncommitted")]
    private static partial void LogCloseGaveUp(ILogger logger, double seconds, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closing sink {SinkKind}/{SinkName} failed: {Error}")]
    private static partial void LogCloseFailed(ILogger logger, string sinkKind, string sinkName, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} {SinkKind} payload(s) for sink '{SinkName}' cannot be routed and go to the DLQ: {Error}")]
    private static partial void LogUnroutable(ILogger logger, string sinkKind, string sinkName, int count, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} source message(s) of {Topic}[{Partition}] written to the DLQ: {Error}")]
    private static partial void LogSourceDeadLettered(ILogger logger, string topic, int partition, int count, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName} asked {Topic}[{Partition}] to back off for {Seconds}s")]
    private static partial void LogBackpressure(ILogger logger, string sinkKind, string sinkName, string topic, int partition, double seconds);

}
