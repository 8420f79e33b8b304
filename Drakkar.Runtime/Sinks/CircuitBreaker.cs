using Drakkar.Observability.Metrics;

namespace Drakkar.Sinks;

public enum CircuitState
{
    Closed,
    Open,
    HalfOpen,
}

/// <summary>What the breaker lets a batch do.</summary>
internal enum CircuitAdmission
{
    /// <summary>Closed: deliver normally.</summary>
    Deliver,
    /// <summary>This batch is the single half-open probe; its outcome closes or re-opens the circuit.</summary>
    Probe,
    /// <summary>Open (or a probe is in flight): route straight to the DLQ without calling the sink.</summary>
    Reject,
}

/// <summary>
/// The per-instance circuit breaker (SPEC S6). It counts terminal outcomes only — a batch's fast retries and
/// handler-requested retries are one outcome — so a blip never trips it, while a persistent outage stops the
/// worker from hammering the destination. Thread-safe; the clock is injected.
/// <para>
/// The single probe slot is leased, not owned: a probe that has reported nothing (no verdict, no release) for
/// <c>probeLease</c> is presumed lost and the next batch becomes the probe. Every sink call is bounded, so a lost probe
/// should not happen; the lease makes "half-open and turning everything away forever" impossible whatever a probe's
/// owner does (a handler hook that never returns, a path that forgets to release).
/// </para>
/// </summary>
internal sealed class CircuitBreaker
{
    private readonly Lock _gate = new();
    private readonly int _threshold;
    private readonly TimeSpan _cooldown;
    private readonly TimeProvider _time;
    // How long a probe may go without reporting back before its slot is handed out again.
    private readonly TimeSpan _probeLease;
    private readonly MetricCell _stateGauge;
    private readonly MetricCell _trips;
    private int _consecutiveFailures;
    private long _openedAt;
    private bool _probeInFlight;
    private long _probeSince;
    private CircuitState _state = CircuitState.Closed;

    public CircuitBreaker(CircuitBreakerConfig config, TimeProvider time, TimeSpan probeLease, MetricCell stateGauge, MetricCell trips)
    {
        _threshold = Math.Max(1, config.FailureThreshold);
        _cooldown = TimeSpan.FromSeconds(Math.Max(0, config.CooldownSeconds));
        _time = time;
        _probeLease = probeLease;
        _stateGauge = stateGauge;
        _trips = trips;
        // Present from the start so a never-tripped sink still shows up in a scrape.
        _stateGauge.Set(0);
    }

    public CircuitState State
    {
        get { lock (_gate) return _state; }
    }

    /// <summary>True while <see cref="Admit"/> would turn a batch away (open and cooling down, or a probe in flight); no side effect.</summary>
    public bool IsTurningAway
    {
        get
        {
            lock (_gate)
            {
                return _state switch
                {
                    CircuitState.Closed => false,
                    CircuitState.HalfOpen => ProbeHeld,
                    _ => _time.GetElapsedTime(_openedAt) < _cooldown,
                };
            }
        }
    }

    /// <summary>
    /// Lets a batch through (closed), lets one probe through (half-open, or open for longer than the cooldown —
    /// <paramref name="cooldown"/> when it is shorter than the configured one), or turns it away.
    /// </summary>
    public CircuitAdmission Admit(TimeSpan? cooldown = null)
    {
        lock (_gate)
        {
            switch (_state)
            {
                case CircuitState.Closed:
                    return CircuitAdmission.Deliver;
                case CircuitState.HalfOpen:
                    if (ProbeHeld) return CircuitAdmission.Reject;
                    return TakeProbe();
                default:
                    var wait = cooldown is { } shorter && shorter < _cooldown ? shorter : _cooldown;
                    if (_time.GetElapsedTime(_openedAt) < wait) return CircuitAdmission.Reject;
                    SetState(CircuitState.HalfOpen);
                    return TakeProbe();
            }
        }
    }

    /// <summary>A probe is out and its lease has not run out (call under the lock).</summary>
    private bool ProbeHeld => _probeInFlight && _time.GetElapsedTime(_probeSince) < _probeLease;

    private CircuitAdmission TakeProbe()
    {
        _probeInFlight = true;
        _probeSince = _time.GetTimestamp();
        return CircuitAdmission.Probe;
    }

    public void RecordSuccess()
    {
        lock (_gate)
        {
            _consecutiveFailures = 0;
            _probeInFlight = false;
            if (_state != CircuitState.Closed) SetState(CircuitState.Closed);
        }
    }

    /// <summary>
    /// Counts a failure; returns the consecutive failures when it opened a closed circuit, else 0 (a failed probe
    /// re-opens it without saying so: the trips counter counts those).
    /// </summary>
    public int RecordFailure()
    {
        lock (_gate)
        {
            _consecutiveFailures++;
            _probeInFlight = false;
            var wasClosed = _state == CircuitState.Closed;
            if (!(_state == CircuitState.HalfOpen || (wasClosed && _consecutiveFailures >= _threshold))) return 0;
            Trip();
            return wasClosed ? _consecutiveFailures : 0;
        }
    }

    /// <summary>Opens the circuit at once (the destination is known to be down), unless it is open already; true when it was closed.</summary>
    public bool Open()
    {
        lock (_gate)
        {
            _probeInFlight = false;
            var wasClosed = _state == CircuitState.Closed;
            if (_state != CircuitState.Open) Trip();
            return wasClosed;
        }
    }

    /// <summary>Frees the probe slot without a verdict (the handler skipped the batch, or delivery was cancelled).</summary>
    public void ReleaseProbe()
    {
        lock (_gate) _probeInFlight = false;
    }

    private void Trip()
    {
        _openedAt = _time.GetTimestamp();
        SetState(CircuitState.Open);
        _trips.Increment();
    }

    private void SetState(CircuitState state)
    {
        _state = state;
        _stateGauge.Set(state switch { CircuitState.Open => 1.0, CircuitState.HalfOpen => 0.5, _ => 0.0 });
    }
}
