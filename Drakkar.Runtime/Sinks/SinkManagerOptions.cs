namespace Drakkar.Sinks;

/// <summary>How the <see cref="SinkManager"/> reacts to failures, with the clock and delays injectable for tests.</summary>
public sealed class SinkManagerOptions
{
    /// <summary>The handler's <c>OnDeliveryError</c>. Default: every failure goes to the DLQ.</summary>
    public Func<DeliveryError, ValueTask<DeliveryAction>> OnDeliveryError { get; init; } = static _ => ValueTask.FromResult(DeliveryAction.Dlq);

    /// <summary>How many times <see cref="DeliveryAction.Retry"/> re-delivers a batch before it falls through to the DLQ (<c>executor.max_retries</c>).</summary>
    public int MaxRetries { get; init; } = 3;

    public CircuitBreakerConfig CircuitBreaker { get; init; } = new();

    /// <summary>The clock the circuit breaker measures cooldowns with.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Waits between fast retries and after backpressure; replace it to observe or skip the waiting.</summary>
    public Func<TimeSpan, CancellationToken, Task> Delay { get; init; } = Task.Delay;

    /// <summary>Told when a sink asks for a partition to be paused (SPEC O9); the host pauses and rewinds it.</summary>
    public ISinkBackpressureListener? Backpressure { get; init; }

    /// <summary>Fast-retry spacing for transient failures on idempotent sinks (SPEC S4): three retries, 50/100/200 ms.</summary>
    internal static readonly TimeSpan[] FastRetryBackoff =
        [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200)];
}

/// <summary>A sink asked for its source partition to be left alone for a while.</summary>
public sealed record SinkBackpressure(string Topic, int Partition, TimeSpan RetryAfter, string SinkKind, string SinkName);

/// <summary>
/// Implemented by the host: on <see cref="OnBackpressure"/> it pauses the partition, abandons its uncommitted work,
/// seeks back to the committed offset and resumes after <see cref="SinkBackpressure.RetryAfter"/>. Abandoning cancels
/// the delivery that is waiting on the sink; a host that does not act simply lets that delivery try again after the
/// delay.
/// </summary>
public interface ISinkBackpressureListener
{
    void OnBackpressure(SinkBackpressure signal);
}
