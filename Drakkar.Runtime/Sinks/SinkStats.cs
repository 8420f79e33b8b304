namespace Drakkar.Sinks;

/// <summary>A point-in-time view of one sink instance, for the debug UI, readiness and tests.</summary>
/// <param name="Kind">The configured kind (or plugin kind).</param>
/// <param name="Name">The instance name.</param>
/// <param name="Connected">Connected by the manager and still holding its connection.</param>
/// <param name="Circuit">The breaker's state.</param>
/// <param name="Delivered">Payloads the sink accepted.</param>
/// <param name="Deliveries">Batches the sink accepted.</param>
/// <param name="Errors">Failed attempts, plus batches the open circuit turned away.</param>
/// <param name="Retries">Re-deliveries: fast retries on transient errors and handler-requested retries.</param>
/// <param name="Skipped">Payloads dropped because the handler chose Skip.</param>
/// <param name="DeadLettered">Payloads written to the DLQ on this sink's behalf.</param>
/// <param name="LastError">The last failure's (masked) text; <c>circuit open</c> when the breaker turned a batch away.</param>
/// <param name="LastErrorAt">When the last failure happened.</param>
/// <param name="LastDeliveryAt">When the last batch was accepted.</param>
/// <param name="LastDeliveryDuration">How long the last accepted batch took, retries included.</param>
public sealed record SinkStats(
    string Kind,
    string Name,
    bool Connected,
    CircuitState Circuit,
    long Delivered,
    long Deliveries,
    long Errors,
    long Retries,
    long Skipped,
    long DeadLettered,
    string? LastError,
    DateTimeOffset? LastErrorAt,
    DateTimeOffset? LastDeliveryAt,
    TimeSpan? LastDeliveryDuration);

/// <summary>The mutable counters behind <see cref="SinkStats"/>; updated concurrently by delivery groups.</summary>
internal sealed class SinkCounters
{
    private long _delivered;
    private long _deliveries;
    private long _errors;
    private long _retries;
    private long _skipped;
    private long _deadLettered;
    private readonly Lock _gate = new();
    private string? _lastError;
    private DateTimeOffset? _lastErrorAt;
    private DateTimeOffset? _lastDeliveryAt;
    private TimeSpan? _lastDeliveryDuration;

    public void Delivered(int payloads, DateTimeOffset at, TimeSpan duration)
    {
        Interlocked.Add(ref _delivered, payloads);
        Interlocked.Increment(ref _deliveries);
        lock (_gate)
        {
            _lastDeliveryAt = at;
            _lastDeliveryDuration = duration;
        }
    }

    public void Failed(string error, DateTimeOffset at)
    {
        Interlocked.Increment(ref _errors);
        lock (_gate)
        {
            _lastError = error;
            _lastErrorAt = at;
        }
    }

    public void Retried() => Interlocked.Increment(ref _retries);

    public void Skipped(int payloads) => Interlocked.Add(ref _skipped, payloads);

    public void DeadLettered(int payloads) => Interlocked.Add(ref _deadLettered, payloads);

    public SinkStats Snapshot(string kind, string name, bool connected, CircuitState circuit)
    {
        lock (_gate)
        {
            return new SinkStats(kind, name, connected, circuit, Interlocked.Read(ref _delivered), Interlocked.Read(ref _deliveries),
                Interlocked.Read(ref _errors), Interlocked.Read(ref _retries), Interlocked.Read(ref _skipped),
                Interlocked.Read(ref _deadLettered), _lastError, _lastErrorAt, _lastDeliveryAt, _lastDeliveryDuration);
        }
    }
}
