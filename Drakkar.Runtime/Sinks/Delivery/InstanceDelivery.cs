using System.Diagnostics;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks.Dlq;
using Microsoft.Extensions.Logging;

namespace Drakkar.Sinks.Delivery;

/// <summary>
/// Delivery to one sink instance: its queue, and the contract every payload group gets however it was batched
/// (docs/semantics.md, "Delivery"): fast retries for idempotent sinks, <c>OnDeliveryError</c>, the circuit breaker
/// and the DLQ. A batch that fails as a whole is split into its groups, each delivered on its own, so one poison
/// payload only sends its own group to the DLQ.
/// </summary>
internal sealed partial class InstanceDelivery
{
    /// <summary>How many groups of a failed batch are re-delivered at once while isolating the failing ones.</summary>
    private const int IsolationParallelism = 8;

    private readonly SinkSlot _slot;
    private readonly IDeadLetterQueue _dlq;
    private readonly SinkManagerOptions _options;
    private readonly DrakkarMetrics _metrics;
    private readonly SinkSecretMasker _masker;
    private readonly ILogger _logger;
    private readonly CancellationToken _closing;
    private readonly DeliveryQueue _queue;
    private readonly bool _holdOnOutage;
    private readonly TimeSpan _attemptTimeout;
    // Groups held back while the destination is unreachable (on_outage: pause).
    private int _holding;
    // When _holding last went from 0 to 1 (Stopwatch ticks).
    private long _holdingSince;
    /// <summary>Successful sink calls so far: an attempt that timed out while this moved was not facing an outage.</summary>
    private long _deliveries;
    // Completed (and replaced) when anything is delivered while groups are held (a held group's probe, or a fresh batch
    // the breaker let through): they try again at once instead of at their next probe time, up to 5 s later, which
    // kept consumption paused that long after the destination was back.
    private TaskCompletionSource _heldRelease = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How soon a held group first probes the destination, and the longest pause between probes.</summary>
    private static readonly TimeSpan FirstHoldProbe = TimeSpan.FromMilliseconds(500), MaxHoldProbe = TimeSpan.FromSeconds(5);
    // The instance's gap between two probes of held groups: doubled by each failed probe up to MaxHoldProbe, back to
    // FirstHoldProbe when a hold starts. Each group also backs off on its own, but with many groups held, one of them
    // was always due: the instance probed (and logged a failure) every 0.5 s for the whole outage.
    private long _holdProbeGapTicks = FirstHoldProbe.Ticks;

    public InstanceDelivery(SinkSlot slot, IDeadLetterQueue dlq, SinkManagerOptions options, DrakkarMetrics metrics, SinkSecretMasker masker,
        ILogger logger, CancellationToken closing)
    {
        _slot = slot;
        _dlq = dlq;
        _options = options;
        _metrics = metrics;
        _masker = masker;
        _logger = logger;
        _closing = closing;
        var batching = options.Batching(slot.Key.KindName, slot.Key.Name);
        _queue = new DeliveryQueue(batching.BatchSize, batching.Linger, batching.Concurrency, () => slot.Breaker.IsTurningAway, DeliverBatchAsync);
        _holdOnOutage = batching.OnOutage == OutagePolicy.Pause;
        _attemptTimeout = batching.AttemptTimeout;
    }

    /// <summary>True while payloads are held back for an outage (on_outage: pause): consumption pauses meanwhile.</summary>
    public bool Holding => Volatile.Read(ref _holding) > 0;

    public SinkSlot Slot => _slot;

    public int QueuedPayloads => _queue.QueuedPayloads;

    /// <summary>Queues a group; the engine settles it once delivered, dead-lettered or skipped.</summary>
    public void Enqueue(PayloadGroup group)
    {
        if (!_queue.TryEnqueue(group))
            throw new ObjectDisposedException(nameof(SinkManager), $"sink {_slot.Key} is closed and takes no more payloads");
    }

    /// <summary>Delivers what is queued, then stops; says once how much was left undelivered at close.</summary>
    public async Task CompleteAsync()
    {
        try
        {
            await _queue.CompleteAsync().ConfigureAwait(false);
        }
        finally
        {
            if (Volatile.Read(ref _abandonedGroups) is > 0 and var groups)
                LogBatchAbandoned(_logger, _slot.Key.KindName, _slot.Key.Name, groups, Volatile.Read(ref _abandonedBatches), _abandonedReason ?? "");
        }
    }

    // What close cut off, said in one line when the queue is done rather than a line per batch (a stop during an
    // outage holds hundreds of batches).
    private int _abandonedGroups, _abandonedBatches;
    private string? _abandonedReason;

    /// <summary>One batch from the queue: every group in it is settled or dropped when this returns.</summary>
    private async Task DeliverBatchAsync(List<PayloadGroup> groups)
    {
        try
        {
            if (_slot.Sink is IBatchingSink && groups.Select(g => g.Origin.Partition).Distinct().Skip(1).Any())
            {
                // A batching sink buffers per partition, so it is handed one partition at a time.
                foreach (var partition in groups.GroupBy(g => g.Origin.Partition))
                    await DeliverManyAsync([.. partition]).ConfigureAwait(false);
                return;
            }
            await DeliverManyAsync(groups).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Only cancellation at close can get here (every failure path settles its groups); what is left is dropped
            // uncommitted and redone by whoever consumes the partition next.
            // A partition given up meanwhile (revoked or lost) is said by the hold's own end; only the close is counted.
            if (_closing.IsCancellationRequested)
            {
                Interlocked.Add(ref _abandonedGroups, groups.Count(g => !g.IsFinished));
                Interlocked.Increment(ref _abandonedBatches);
                Interlocked.CompareExchange(ref _abandonedReason, e.GetType().Name, null);
            }
        }
        finally
        {
            foreach (var group in groups) group.Drop();
        }
    }

    private async Task DeliverManyAsync(List<PayloadGroup> groups)
    {
        if (groups.Count == 1)
        {
            await DeliverOrHoldAsync(groups[0], null).ConfigureAwait(false);
            return;
        }
        using var stop = new BatchStop(groups, _closing);

        var admission = _slot.Breaker.Admit();
        if (admission == CircuitAdmission.Reject)
        {
            await Task.WhenAll(groups.Select(g => _holdOnOutage ? HoldAsync(g) : RejectAsync(g))).ConfigureAwait(false);
            return;
        }

        var batch = BatchOf(groups);
        var verdict = false;
        try
        {
            var started = Stopwatch.GetTimestamp();
            var deliveriesBefore = Volatile.Read(ref _deliveries);
            var failure = await TryDeliverAsync(batch, stop.Token).ConfigureAwait(false);
            if (failure is not null)
            {
                // All or nothing failed: find the groups that really fail by delivering each on its own.
                LogIsolating(_logger, _slot.Key.KindName, _slot.Key.Name, groups.Count, batch.Count, _masker.Apply(Describe(failure)));
                if (admission == CircuitAdmission.Probe) _slot.Breaker.ReleaseProbe();
                verdict = true;
                await IsolateAsync(groups).ConfigureAwait(false);
                return;
            }

            var delivered = 0;
            // Each group's first failure; null: delivered.
            var errors = new Exception?[groups.Count];
            var index = 0;
            for (var g = 0; g < groups.Count; g++)
            {
                var group = groups[g];
                for (var i = 0; i < group.Count; i++, index++) errors[g] ??= batch.FailureOf(index);
                if (errors[g] is null) delivered += group.Count;
            }
            if (delivered > 0)
            {
                _slot.Breaker.RecordSuccess();
                verdict = true;
                Delivered(delivered, Stopwatch.GetElapsedTime(started));
            }
            else if (admission == CircuitAdmission.Probe)
            {
                _slot.Breaker.ReleaseProbe();
                verdict = true;
            }
            for (var g = 0; g < groups.Count; g++)
            {
                if (errors[g] is { } error) errors[g] = AtFaultIfHung(error, deliveriesBefore);
                else groups[g].Settle();
            }
            if (delivered < batch.Count)
                await Task.WhenAll(groups.Select((group, g) => (Group: group, Error: errors[g])).Where(f => f.Error is not null)
                    .Select(f => DeliverOrHoldAsync(f.Group, f.Error))).ConfigureAwait(false);
        }
        finally
        {
            if (admission == CircuitAdmission.Probe && !verdict) _slot.Breaker.ReleaseProbe();
        }
    }

    private async Task IsolateAsync(List<PayloadGroup> groups)
    {
        using var parallel = new SemaphoreSlim(IsolationParallelism);
        await Task.WhenAll(groups.Select(async group =>
        {
            await parallel.WaitAsync(_closing).ConfigureAwait(false);
            try
            {
                await DeliverOrHoldAsync(group, null, admitted: true).ConfigureAwait(false);
            }
            finally
            {
                parallel.Release();
            }
        })).ConfigureAwait(false);
    }

    private async Task RejectAsync(PayloadGroup group)
    {
        _slot.Counters.Failed(SinkManager.CircuitOpenError, _options.Time.GetUtcNow());
        LogCircuitOpen(_logger, _slot.Key.KindName, _slot.Key.Name, group.Count);
        await DeadLetterGroupAsync(group, SinkManager.CircuitOpenError, 0).ConfigureAwait(false);
    }

    /// <summary>
    /// The SPEC's contract for one group. <paramref name="firstFailure"/> is the outcome of an attempt already made
    /// as part of a batch (the sink reported this group's payloads as failed), which counts as attempt 1.
    /// <paramref name="admitted"/>: the group's batch already passed the breaker (it is being isolated after the
    /// batch failed as a whole), so it is tried without asking again; otherwise a half-open breaker would turn the
    /// healthy neighbours of one poison payload away as "circuit open" while the first of them is the probe.
    /// A held group passes <c>heldSince</c>, the instance's successful calls when its hold began: a timeout after
    /// others got through since is this group's fault (see <see cref="AtFaultIfHung"/>).
    /// </summary>
    /// <returns>False when the group is to be held for an outage (on_outage: pause) instead: nothing was settled.</returns>
    private async Task<bool> DeliverGroupAsync(PayloadGroup group, Exception? firstFailure, bool admitted = false, CircuitAdmission? given = null,
        long? heldSince = null, int probe = 0)
    {
        var admission = given ?? (firstFailure is null && !admitted ? _slot.Breaker.Admit() : CircuitAdmission.Deliver);
        if (admission == CircuitAdmission.Reject)
        {
            if (_holdOnOutage) return false;
            await RejectAsync(group).ConfigureAwait(false);
            return true;
        }

        var batch = BatchOf([group]);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(group.Abandoned, _closing);
        var verdict = false;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                var started = Stopwatch.GetTimestamp();
                Exception? failure;
                if (attempt == 1 && firstFailure is not null)
                {
                    // Judged already by the batch attempt that made it.
                    failure = firstFailure;
                }
                else
                {
                    var deliveriesBefore = heldSince ?? Volatile.Read(ref _deliveries);
                    failure = await TryDeliverAsync(batch, stop.Token).ConfigureAwait(false);
                    if (failure is null && batch.HasFailures) failure = FirstFailure(batch);
                    if (failure is not null) failure = AtFaultIfHung(failure, deliveriesBefore);
                }
                if (failure is null)
                {
                    _slot.Breaker.RecordSuccess();
                    verdict = true;
                    Delivered(group.Count, Stopwatch.GetElapsedTime(started));
                    group.Settle();
                    return true;
                }

                var error = _masker.Apply(Describe(failure));
                _slot.Counters.Failed(error, _options.Time.GetUtcNow());
                _slot.Errors.Increment();
                // A held group's probes are counted on their own: each is the first attempt of its delivery.
                if (probe > 0) LogProbeFailed(_logger, _slot.Key.KindName, _slot.Key.Name, probe, group.Count, Volatile.Read(ref _holding), error);
                else LogDeliveryFailed(_logger, _slot.Key.KindName, _slot.Key.Name, group.Count, attempt, error);
                _metrics.Events.DeliveryFailed(_slot.Key.KindName, _slot.Key.Name, group.Count, error);

                if (heldSince is not null && TransientErrors.IsTransient(failure))
                {
                    // A held group's probe is one attempt, and the outage goes on: it stays held. OnDeliveryError is not
                    // asked again (it was when the group was first held); asked per probe, a Retry answer ran a whole
                    // retry cycle each time, hitting the destination several times a second instead of backing off.
                    verdict = true;
                    if (_slot.Breaker.Open()) LogCircuitOpened(_logger, _slot.Key.KindName, _slot.Key.Name, 1, error);
                    return false;
                }

                var action = await DecideAsync(group, error, attempt).ConfigureAwait(false);
                if (action == DeliveryAction.Retry && attempt <= _options.MaxRetries)
                {
                    _slot.Counters.Retried();
                    _slot.Retries.Increment();
                    // Cancelled when the group's partition is given up or the sinks close: the group is then dropped
                    // uncommitted (see DeliverBatchAsync) and redone by whoever consumes the partition next.
                    var wait = _options.RetryBackoff.Before(attempt, Random.Shared);
                    if (wait > TimeSpan.Zero)
                    {
                        LogRetryBackoff(_logger, _slot.Key.KindName, _slot.Key.Name, group.Count, attempt + 1, wait.TotalMilliseconds);
                        await _options.Delay(wait, stop.Token).ConfigureAwait(false);
                    }
                    batch = BatchOf([group]);
                    continue;
                }
                if (action == DeliveryAction.Skip)
                {
                    // The handler's choice, not a verdict on the sink's health: the breaker is not told.
                    _slot.Counters.Skipped(group.Count);
                    _slot.Skipped.Add(group.Count);
                    LogSkipped(_logger, _slot.Key.KindName, _slot.Key.Name, group.Count, error);
                    group.Outcome("skipped", error);
                    group.Settle();
                    return true;
                }
                verdict = true;
                // A call that never answered while the instance delivered other payloads arrives here as a refusal
                // (AtFaultIfHung): this group's fault, not an outage, and holding it would keep its partition forever.
                var refused = !TransientErrors.IsTransient(failure);
                if (_holdOnOutage && !refused)
                {
                    // The destination is unreachable, not the payload at fault: hold it (see HoldAsync).
                    if (_slot.Breaker.Open()) LogCircuitOpened(_logger, _slot.Key.KindName, _slot.Key.Name, 1, error);
                    return false;
                }
                // A refusal (bad data, HTTP 4xx, a constraint) is the payload's fault and an answer from the destination,
                // not an outage: it goes to the DLQ and tells the breaker the destination is there. Counting it as a
                // failure let a few bad payloads in a row open the circuit and hold (or dead-letter) the good ones
                // behind them.
                if (refused) _slot.Breaker.RecordSuccess();
                else if (_slot.Breaker.RecordFailure() is var failures and > 0) LogCircuitOpened(_logger, _slot.Key.KindName, _slot.Key.Name, failures, error);
                await DeadLetterGroupAsync(group, error, attempt).ConfigureAwait(false);
                return true;
            }
        }
        finally
        {
            // A probe that ended without a verdict (skipped or cancelled) must free its slot, or the circuit would
            // stay half-open with a phantom probe forever.
            if (admission == CircuitAdmission.Probe && !verdict) _slot.Breaker.ReleaseProbe();
        }
    }

    private async Task DeliverOrHoldAsync(PayloadGroup group, Exception? firstFailure, bool admitted = false)
    {
        if (!await DeliverGroupAsync(group, firstFailure, admitted).ConfigureAwait(false)) await HoldAsync(group).ConfigureAwait(false);
    }

    /// <summary>
    /// on_outage: pause. The group waits (its messages stay uncommitted; <see cref="Holding"/> pauses consumption)
    /// and probes the destination, at most one probe at a time across the instance, first after 0.5 s and then
    /// backing off to every 5 s, whatever the breaker's cooldown; once a probe (or any other delivery) gets through,
    /// every other held group is woken and delivered at once. A group whose partition is given up meanwhile is dropped
    /// uncommitted (the next owner redoes it).
    /// </summary>
    private async Task HoldAsync(PayloadGroup group)
    {
        if (Interlocked.Increment(ref _holding) == 1)
        {
            Volatile.Write(ref _holdProbeGapTicks, FirstHoldProbe.Ticks);
            Volatile.Write(ref _holdingSince, Stopwatch.GetTimestamp());
            LogHolding(_logger, _slot.Key.KindName, _slot.Key.Name);
            _metrics.Events.OutageStarted(_slot.Key.KindName, _slot.Key.Name);
            _ = Task.Run(WatchForReconnectAsync);
        }
        var heldSince = Volatile.Read(ref _deliveries);
        var delivered = false;
        var probes = 0;
        try
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(group.Abandoned, _closing);
            var wait = FirstHoldProbe;
            while (true)
            {
                var released = Volatile.Read(ref _heldRelease).Task;
                await Task.WhenAny(_options.Delay(wait, stop.Token), released).ConfigureAwait(false);
                stop.Token.ThrowIfCancellationRequested();
                wait = wait * 2 < MaxHoldProbe ? wait * 2 : MaxHoldProbe;
                // Woken (the client reconnected, or another delivery got through): probe now, not after the
                // instance's probe gap, which may have grown to 5 s and held a reconnected sink back that long.
                var gap = released.IsCompleted ? TimeSpan.Zero : TimeSpan.FromTicks(Volatile.Read(ref _holdProbeGapTicks));
                var admission = _slot.Breaker.Admit(gap);
                if (admission == CircuitAdmission.Reject)
                {
                    // Another group's probe is in flight (bounded by attempt_timeout_seconds, and the breaker hands
                    // its slot out again once its lease ran out) or the circuit was just re-opened.
                    LogHeldBack(_logger, _slot.Key.KindName, _slot.Key.Name, group.Count, _slot.Breaker.State, wait.TotalMilliseconds);
                    continue;
                }
                if (await DeliverGroupAsync(group, null, given: admission, heldSince: heldSince, probe: ++probes).ConfigureAwait(false))
                {
                    delivered = true;
                    return;
                }
                var last = Volatile.Read(ref _holdProbeGapTicks);
                Interlocked.CompareExchange(ref _holdProbeGapTicks, Math.Min(last * 2, MaxHoldProbe.Ticks), last);
            }
        }
        finally
        {
            // "Back" only when the last held group got through; a hold that ends because the worker stops or the
            // partition went elsewhere says so (its payloads stay uncommitted for the next owner).
            if (Interlocked.Decrement(ref _holding) == 0)
            {
                var reason = delivered ? "" : _closing.IsCancellationRequested ? "the worker is stopping" : "their partitions were given up";
                // The last held group may also have ended refused (dead-lettered) or skipped, which says nothing of the sink being back.
                if (delivered && group.SettledAs is { } ending) LogHoldEndedWithout(_logger, _slot.Key.KindName, _slot.Key.Name, ending.Replace('_', '-'));
                else if (delivered) LogHoldOver(_logger, _slot.Key.KindName, _slot.Key.Name);
                else LogHoldGivenUp(_logger, _slot.Key.KindName, _slot.Key.Name, reason);
                _metrics.Events.OutageEnded(_slot.Key.KindName, _slot.Key.Name, Stopwatch.GetElapsedTime(Volatile.Read(ref _holdingSince)), delivered, reason);
            }
        }
    }

    /// <summary>How often a holding instance looks at its sink's connection (<see cref="WatchForReconnectAsync"/>).</summary>
    internal static readonly TimeSpan ReconnectPoll = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// While the instance holds payloads: a sink that keeps a connection of its own (Redis, Kafka, MongoDB) reports
    /// when it is connected again, and the held groups are woken then instead of at their next probe (up to 5 s later).
    /// Sinks without a standing connection (PostgreSQL's pool, HTTP) always read connected and change nothing here.
    /// </summary>
    private async Task WatchForReconnectAsync()
    {
        var wasDown = !_slot.Sink.IsConnected;
        try
        {
            while (Volatile.Read(ref _holding) > 0)
            {
                // Real time, not the engine's injectable delay: a test that makes the probes' waits instant must not
                // make this loop spin.
                await Task.Delay(ReconnectPoll, _closing).ConfigureAwait(false);
                var up = _slot.Sink.IsConnected;
                if (wasDown && up)
                {
                    Volatile.Write(ref _holdProbeGapTicks, FirstHoldProbe.Ticks);
                    Interlocked.Exchange(ref _heldRelease, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                }
                wasDown = !up;
            }
        }
        catch (OperationCanceledException)
        {
            // The worker is stopping: the held groups end on their own.
        }
    }

    /// <summary>
    /// The groups' payloads as one batch, each with its trace context (see <see cref="PayloadGroup.TraceContext"/>; none
    /// when no group has one); each payload's source (the hook call, and its index among that call's payloads) is made
    /// from the groups when a sink asks for it.
    /// </summary>
    private static SinkBatch BatchOf(List<PayloadGroup> groups)
    {
        var first = groups[0];
        IReadOnlyList<SinkPayload> payloads = groups.Count == 1 ? first.Payloads : [.. groups.SelectMany(g => g.Payloads)];
        var contexts = groups.TrueForAll(g => g.TraceContext == default) ? null : new ActivityContext[payloads.Count];
        if (contexts is not null)
        {
            var index = 0;
            foreach (var group in groups)
                for (var i = 0; i < group.Count; i++, index++) contexts[index] = group.TraceContext;
        }
        var partition = first.Origin.Partition;
        return new SinkBatch(first.Origin.Topic, groups.TrueForAll(g => g.Origin.Partition == partition) ? partition : -1, payloads, contexts,
            groups: groups);
    }

    private void Delivered(int count, TimeSpan elapsed)
    {
        Interlocked.Increment(ref _deliveries);
        _slot.Counters.Delivered(count, _options.Time.GetUtcNow(), elapsed);
        _slot.PayloadsDelivered.Add(count);
        _metrics.SinkDeliverDuration.Observe(elapsed.TotalSeconds, _slot.Key.KindName, _slot.Key.Name);
        _metrics.Events.Delivered(_slot.Key.KindName, _slot.Key.Name, count, elapsed);
        // The destination answers again: the held groups go now (one read of a counter when nothing is held).
        if (Volatile.Read(ref _holding) > 0)
            Interlocked.Exchange(ref _heldRelease, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    private static Exception FirstFailure(SinkBatch batch)
    {
        for (var i = 0; i < batch.Count; i++)
            if (batch.FailureOf(i) is { } error) return error;
        throw new InvalidOperationException("the batch reported failures but none is recorded");
    }

    /// <summary>
    /// One attempt as the breaker sees it: the sink call plus fast retries (idempotent sinks, transient errors) and
    /// waits the sink asked for (<see cref="SinkBackpressureException"/> from a delivery means "slow down": the same
    /// batch is tried again after the delay; a partition is rewound only when a checkpoint flush pushes back). Each
    /// sink call is bounded by <c>attempt_timeout_seconds</c>: one that overruns it is abandoned and reported as a
    /// <see cref="TimeoutException"/> at once, without fast retries — a destination that did not answer for that long
    /// is not having a blip.
    /// </summary>
    /// <param name="batch">The payloads.</param>
    /// <param name="stop">Fires when the sinks close or every payload's partition gave its work up.</param>
    private async Task<Exception?> TryDeliverAsync(SinkBatch batch, CancellationToken stop)
    {
        var fastRetries = 0;
        while (true)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop);
            deadline.CancelAfter(_attemptTimeout);
            Task? call = null;
            try
            {
                call = _slot.Sink.DeliverAsync(batch, deadline.Token).AsTask();
                // Waiting on the deadline too: a sink that does not watch its token is not waited on past it either.
                await call.WaitAsync(deadline.Token).ConfigureAwait(false);
                return null;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                throw;
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                // Whether the abandoned call wrote anything is unknown (at-least-once: a retry may write it again);
                // whatever it ends with later is observed here so it cannot surface as an unobserved task exception.
                _ = call?.ContinueWith(static ended => ended.Exception, CancellationToken.None,
                    TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                return new TimeoutException(
                    $"no answer within {_attemptTimeout.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}s " +
                    "(attempt_timeout_seconds); the call was abandoned");
            }
            catch (SinkBackpressureException backpressure)
            {
                LogSlowDown(_logger, _slot.Key.KindName, _slot.Key.Name, batch.Count, backpressure.RetryAfter.TotalSeconds);
                await _options.Delay(backpressure.RetryAfter, stop).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                if (!_slot.Sink.IsIdempotent || fastRetries >= SinkManagerOptions.FastRetryBackoff.Length || !TransientErrors.IsTransient(e))
                    return e;
                var backoff = SinkManagerOptions.FastRetryBackoff[fastRetries++];
                _slot.Counters.Retried();
                _slot.Retries.Increment();
                LogFastRetry(_logger, _slot.Key.KindName, _slot.Key.Name, fastRetries, backoff.TotalMilliseconds, _masker.Apply(e.Message));
                await _options.Delay(backoff, stop).ConfigureAwait(false);
            }
        }
    }

    private async Task<DeliveryAction> DecideAsync(PayloadGroup group, string error, int attempt)
    {
        try
        {
            return await _options.OnDeliveryError(new DeliveryError(_slot.Key.Kind, _slot.Key.Name, error, group.Payloads, attempt)
            {
                CustomKind = _slot.Key.CustomKind,
            }).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // A throwing hook must not lose the payloads: fall back to the default decision.
            LogHookFailed(_logger, e, _slot.Key.KindName, _slot.Key.Name);
            return DeliveryAction.Dlq;
        }
    }

    private async Task DeadLetterGroupAsync(PayloadGroup group, string error, int attempts)
    {
        var origin = group.Origin;
        var letter = new DeadLetter(_slot.Key.KindName, _slot.Key.Name, error, group.Payloads, attempts, origin.Topic, origin.Partition,
            origin.Messages, _options.Time.GetUtcNow());
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(group.Abandoned, _closing);
        await _dlq.WriteAsync(letter, stop.Token).ConfigureAwait(false);
        group.Outcome("dead_lettered", error);
        _slot.Counters.DeadLettered(group.Count);
        _slot.DeadLettered.Add(group.Count);
        LogDeadLettered(_logger, _slot.Key.KindName, _slot.Key.Name, group.Count, attempts, _dlq.Destination);
        group.Settle();
    }

    /// <summary>
    /// A timeout (the engine's <c>attempt_timeout_seconds</c>, or the sink's own: an HTTP request's <c>timeout_seconds</c>,
    /// a client's command timeout) after other calls of the instance succeeded since <paramref name="deliveriesBefore"/>
    /// (the attempt's start, or a held group's hold) is these payloads' fault, not an outage: the destination answers,
    /// so they are what makes it hang. Returned as a refusal, which goes down the failure path (<c>OnDeliveryError</c>,
    /// the DLQ by default) instead of being held, which would keep its partition forever. Any other failure is returned as it is.
    /// </summary>
    private Exception AtFaultIfHung(Exception failure, long deliveriesBefore)
    {
        if (Volatile.Read(ref _deliveries) == deliveriesBefore || !TransientErrors.IsTransient(failure)) return failure;
        for (var cause = failure; cause is not null; cause = cause.InnerException)
        {
            if (cause is TimeoutException)
                return new SinkDeliveryException(
                    $"{Describe(failure)}; other deliveries to this instance succeeded meanwhile, so these payloads are at fault, not an outage", failure);
        }
        return failure;
    }

    /// <summary>Cancelled when the sinks close, or when every group of a batch was abandoned by its partition.</summary>
    private sealed class BatchStop : IDisposable
    {
        private readonly CancellationTokenSource _source;
        private readonly CancellationTokenRegistration[] _registrations;
        private int _open;

        public BatchStop(List<PayloadGroup> groups, CancellationToken closing)
        {
            _source = CancellationTokenSource.CreateLinkedTokenSource(closing);
            _open = groups.Count;
            // The groups of one partition share its token: one registration per token, counting its groups (a
            // registration per group cost a delegate and a callback node per hook call).
            var shares = new List<TokenShare>(1);
            foreach (var group in groups)
            {
                var s = 0;
                while (s < shares.Count && shares[s].Token != group.Abandoned) s++;
                if (s == shares.Count) shares.Add(new TokenShare(this, group.Abandoned));
                shares[s].Groups++;
            }
            _registrations = new CancellationTokenRegistration[shares.Count];
            for (var i = 0; i < shares.Count; i++)
                _registrations[i] = shares[i].Token.Register(static share => ((TokenShare)share!).Abandoned(), shares[i]);
        }

        public CancellationToken Token => _source.Token;

        private void GroupsAbandoned(int groups)
        {
            if (Interlocked.Add(ref _open, -groups) == 0) _source.Cancel();
        }

        /// <summary>One token the batch's groups are abandoned by, and how many groups it abandons.</summary>
        private sealed class TokenShare(BatchStop stop, CancellationToken token)
        {
            public CancellationToken Token { get; } = token;
            public int Groups { get; set; }

            public void Abandoned() => stop.GroupsAbandoned(Groups);
        }

        public void Dispose()
        {
            foreach (var registration in _registrations) registration.Dispose();
            _source.Dispose();
        }
    }

    /// <summary>
    /// The failure text handed to the hook, stats and the DLQ: the message, with the cause when it adds something. A
    /// message that already quotes the start of its cause has summed it up (a sink that cut a client's diagnostic dump
    /// from it, say), and the cause is not added again in full.
    /// </summary>
    internal static string Describe(Exception error)
    {
        var text = error is SinkTransientException or SinkRoutingException or SinkDeliveryException
            ? error.Message
            : $"{error.GetType().Name}: {error.Message}";
        if (error.InnerException is { } inner && !text.Contains(inner.Message.AsSpan(0, Math.Min(inner.Message.Length, 60)), StringComparison.Ordinal))
            text += $" ({inner.GetType().Name}: {inner.Message})";
        return text;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName} failed to take {Count} payload(s) on attempt {Attempt}: {Error}")]
    private static partial void LogDeliveryFailed(ILogger logger, string sinkKind, string sinkName, int count, int attempt, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName} failed to take a batch of {Groups} hook results ({Count} payloads); delivering each on its own, so that only the groups at fault fail: {Error}")]
    private static partial void LogIsolating(ILogger logger, string sinkKind, string sinkName, int groups, int count, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Sink {SinkKind}/{SinkName} transient failure, fast retry {Retry} in {BackoffMs} ms: {Error}")]
    private static partial void LogFastRetry(ILogger logger, string sinkKind, string sinkName, int retry, double backoffMs, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Sink {SinkKind}/{SinkName}: {Count} payload(s) are delivered again (attempt {Attempt}) in {WaitMs} ms")]
    private static partial void LogRetryBackoff(ILogger logger, string sinkKind, string sinkName, int count, int attempt, double waitMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName}: circuit opened after {Failures} consecutive failure(s) that a retry could fix (the destination looks unreachable); last: {Error}")]
    private static partial void LogCircuitOpened(ILogger logger, string sinkKind, string sinkName, int failures, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName}: circuit open, {Count} payload(s) go straight to the DLQ")]
    private static partial void LogCircuitOpen(ILogger logger, string sinkKind, string sinkName, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sink {SinkKind}/{SinkName} is unreachable: holding its payloads (on_outage: pause), consumption pauses, offsets stay uncommitted; probing until it is back")]
    private static partial void LogHolding(ILogger logger, string sinkKind, string sinkName);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Sink {SinkKind}/{SinkName}: {Count} held payload(s) turned away by the circuit ({State}: another probe in flight, or just re-opened); looking again in {WaitMs} ms")]
    private static partial void LogHeldBack(ILogger logger, string sinkKind, string sinkName, int count, CircuitState state, double waitMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sink {SinkKind}/{SinkName} is back: no payload held any more")]
    private static partial void LogHoldOver(ILogger logger, string sinkKind, string sinkName);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName}: no payload held any more, but the last held payloads were {Ending}, not delivered: the sink refused them (see the line before), which does not show that it is back")]
    private static partial void LogHoldEndedWithout(ILogger logger, string sinkKind, string sinkName, string ending);

    // Each held group (one hook call's payloads) probes on its own schedule: the numbers are that group's, and the
    // groups held say how much waits behind it.
    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName} is still unreachable: probe {Probe} of a held group of {Count} payload(s) failed ({HeldGroups} group(s) held): {Error}")]
    private static partial void LogProbeFailed(ILogger logger, string sinkKind, string sinkName, int probe, int count, int heldGroups, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName} was not reached again: its held payloads were let go because {Reason}; their offsets stay uncommitted, so they are delivered after the restart or by the partitions' next owner")]
    private static partial void LogHoldGivenUp(ILogger logger, string sinkKind, string sinkName, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName}: handler skipped {Count} payload(s) after: {Error}")]
    private static partial void LogSkipped(ILogger logger, string sinkKind, string sinkName, int count, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName}: {Count} payload(s) written to the DLQ {Topic} after {Attempts} attempt(s)")]
    private static partial void LogDeadLettered(ILogger logger, string sinkKind, string sinkName, int count, int attempts, string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName} asked to slow down: {Count} payload(s) are tried again in {Seconds}s")]
    private static partial void LogSlowDown(ILogger logger, string sinkKind, string sinkName, int count, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "OnDeliveryError threw for sink {SinkKind}/{SinkName}; the payloads go to the DLQ")]
    private static partial void LogHookFailed(ILogger logger, Exception error, string sinkKind, string sinkName);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink {SinkKind}/{SinkName}: {Groups} hook result(s) in {Batches} batch(es) left undelivered at close ({Reason}); their offsets stay uncommitted")]
    private static partial void LogBatchAbandoned(ILogger logger, string sinkKind, string sinkName, int groups, int batches, string reason);
}
