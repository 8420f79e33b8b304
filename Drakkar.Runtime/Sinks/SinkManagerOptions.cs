namespace Drakkar.Sinks;

/// <summary>How the <see cref="SinkManager"/> reacts to failures, with the clock and delays injectable for tests.</summary>
internal sealed class SinkManagerOptions
{
    /// <summary>The handler's <c>OnDeliveryError</c>. Default: every failure goes to the DLQ.</summary>
    public Func<DeliveryError, ValueTask<DeliveryAction>> OnDeliveryError { get; init; } = static _ => ValueTask.FromResult(DeliveryAction.Dlq);

    /// <summary>How many times <see cref="DeliveryAction.Retry"/> re-delivers a batch before it falls through to the DLQ (<c>executor.max_retries</c>).</summary>
    public int MaxRetries { get; init; } = 3;

    /// <summary>
    /// The wait before each such re-delivery (<c>sinks.retry_backoff_ms</c>/<c>retry_backoff_max_ms</c> for a worker);
    /// the default retries at once.
    /// </summary>
    public RetryBackoff RetryBackoff { get; init; } = RetryBackoff.None;

    public CircuitBreakerConfig CircuitBreaker { get; init; } = new();

    /// <summary>The clock the circuit breaker measures cooldowns with.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Waits between fast retries, between retries the handler asked for, and after backpressure; replace it to observe or skip the waiting.</summary>
    public Func<TimeSpan, CancellationToken, Task> Delay { get; init; } = Task.Delay;

    /// <summary>Payloads in flight (handed to sinks, not yet settled) at which the worker pauses consumption.</summary>
    public int MaxInFlightPayloads { get; init; } = 20_000;

    /// <summary>The worker id; under <c>kafka.exactly_once</c> it names the transactional producer. Null: a generated id.</summary>
    public string? WorkerId { get; init; }

    /// <summary>How each instance's delivery queue batches, by <c>(kind, name)</c>.</summary>
    public Func<string, string, SinkBatching> Batching { get; init; } = static (_, _) => SinkBatching.Default;

    /// <summary>Fast-retry spacing for transient failures on idempotent sinks (SPEC S4): three retries, 50/100/200 ms.</summary>
    internal static readonly TimeSpan[] FastRetryBackoff =
        [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200)];
}

/// <summary>
/// How one sink instance's delivery queue packs payloads: at most <see cref="BatchSize"/> per delivery, waiting at
/// most <see cref="Linger"/> for a batch to fill, with up to <see cref="Concurrency"/> deliveries in flight.
/// </summary>
public sealed record SinkBatching(int BatchSize, TimeSpan Linger, int Concurrency = 1, OutagePolicy OnOutage = OutagePolicy.Dlq)
{
    /// <summary>For plugin sinks and tests: up to 100 payloads, sent as soon as they are queued, one delivery at a time.</summary>
    public static SinkBatching Default { get; } = new(100, TimeSpan.Zero);

    /// <summary>
    /// The longest one sink call may take (<c>attempt_timeout_seconds</c>); past it the call is abandoned and counts
    /// as a transient failure, so no delivery, retry or outage probe ever waits on a destination forever.
    /// </summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
