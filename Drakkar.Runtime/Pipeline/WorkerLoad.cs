namespace Drakkar.Pipeline;

/// <summary>
/// Global backpressure (SPEC O6), on two measures. The executor load: queued messages plus unfinished tasks across
/// all partitions (a task is finished once its hooks returned); consumption pauses when it reaches
/// <c>max_executors × backpressure_high_multiplier</c> and may resume at <c>max_executors × backpressure_low_multiplier</c>.
/// The delivery load: payloads handed to sinks and not yet settled; consumption pauses at
/// <c>sinks.max_inflight_payloads</c> and may resume at half of it; a sink holding payloads for an outage counts as
/// that limit reached, whatever the count. Consumption resumes only when both allow it.
/// </summary>
internal sealed class WorkerLoad(long high, long low, Func<long>? inFlightPayloads = null, long maxInFlightPayloads = long.MaxValue)
{
    private readonly Func<long> _inFlight = inFlightPayloads ?? (static () => 0);
    // Set when the executor load falls to Low: a paused poll thread waits on it instead of sleeping, so consumption
    // resumes the moment there is room (a 1 ms sleep left the pipelines idle for most of a millisecond per cycle).
    private readonly ManualResetEventSlim _room = new(false, spinCount: 0);
    private long _load;

    public long High { get; } = high;
    public long Low { get; } = low;
    public long Current => Interlocked.Read(ref _load);

    /// <summary>
    /// The delivery load: payloads in flight to the sinks, or <see cref="MaxInFlightPayloads"/> when that is more and
    /// a sink holds payloads for an outage.
    /// </summary>
    public long InFlightPayloads => _inFlight();

    public long MaxInFlightPayloads { get; } = maxInFlightPayloads;

    /// <summary>True while consumption should stay paused; flips at the thresholds (hysteresis).</summary>
    public bool Paused { get; private set; }

    /// <summary>How many times consumption paused, and resumed, since start.</summary>
    public int Pauses { get; private set; }
    public int Resumes { get; private set; }

    public void Add(long amount)
    {
        var now = Interlocked.Add(ref _load, amount);
        if (amount < 0 && now <= Low && now - amount > Low) _room.Set();
    }

    /// <summary>
    /// Called while consumption is paused: waits until the executor load falls to Low, or <paramref name="timeout"/>
    /// passed. When the executor load is at or under Low already, what holds the pause is the delivery load, which has
    /// no signal, so the whole timeout is waited (returning at once spun the poll thread at full speed for as long as
    /// payloads were in flight to a slow sink). Returns at once when both loads already allow resuming. Call
    /// <see cref="Update"/> after it.
    /// </summary>
    /// <returns>True when there is room: both loads allow resuming, or the executor load fell to Low during the wait.</returns>
    public bool WaitForRoom(TimeSpan timeout)
    {
        // Set only when the load crosses Low from above; reset first, so such a fall during the wait still ends it.
        // A fall between the caller's Update and this reset left no signal behind: the check after the reset sees it.
        _room.Reset();
        if (Current <= Low && InFlightPayloads <= MaxInFlightPayloads / 2) return true;
        return _room.Wait(timeout);
    }

    /// <summary>Re-evaluates the pause state; returns true when it changed.</summary>
    public bool Update()
    {
        var load = Current;
        var inFlight = InFlightPayloads;
        if (!Paused && (load >= High || inFlight >= MaxInFlightPayloads))
        {
            Paused = true;
            Pauses++;
            return true;
        }
        if (Paused && load <= Low && inFlight <= MaxInFlightPayloads / 2)
        {
            Paused = false;
            Resumes++;
            return true;
        }
        return false;
    }

    public static WorkerLoad From(ExecutorConfig executor, IPayloadDelivery delivery) => new(
        (long)executor.MaxExecutors * executor.BackpressureHighMultiplier,
        (long)executor.MaxExecutors * executor.BackpressureLowMultiplier,
        () => delivery.HoldingForOutage ? Math.Max(delivery.InFlightPayloads, delivery.MaxInFlightPayloads) : delivery.InFlightPayloads,
        delivery.MaxInFlightPayloads);
}
