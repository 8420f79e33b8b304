using System.Diagnostics;
using Drakkar.Observability.Tracing;
using Drakkar.Pipeline;

namespace Drakkar.Sinks.Delivery;

/// <summary>
/// The payloads one hook call returned for one sink instance: the unit the retry contract, <c>OnDeliveryError</c>
/// and the DLQ act on, however many groups share a batch.
/// </summary>
internal sealed class PayloadGroup(List<SinkPayload> payloads, DeliveryOrigin origin, Settlement settlement, CancellationToken abandoned,
    Activity? span = null)
{
    public List<SinkPayload> Payloads { get; } = payloads;
    public DeliveryOrigin Origin { get; } = origin;

    /// <summary>The group's <c>delivery</c> span, ended when it is settled or dropped; null when tracing is off.</summary>
    public Activity? Span { get; } = span;

    /// <summary>
    /// The trace context the payloads are delivered under: the delivery span's, or when its trace is sampled out (no
    /// span), the span that produced them, so destinations still continue the trace; default when tracing is off.
    /// </summary>
    public ActivityContext TraceContext => Span?.Context ?? Origin.Parent;

    /// <summary>Cancelled when the source partition's work was abandoned (lost, rewound, drain timed out).</summary>
    public CancellationToken Abandoned { get; } = abandoned;

    private int _finished;

    public int Count => Payloads.Count;

    /// <summary>Settled or dropped already.</summary>
    public bool IsFinished => Volatile.Read(ref _finished) != 0;

    /// <summary>Every payload is delivered, dead-lettered or skipped.</summary>
    public void Settle()
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0) return;
        PipelineTracing.Stop(Span);
        settlement.GroupSettled();
    }

    /// <summary>How the group ended when it was not simply delivered (<c>dead_lettered</c>, <c>skipped</c>, <c>dropped</c>); null otherwise.</summary>
    public string? SettledAs { get; private set; }

    /// <summary>Records on the group's span how it was settled when it was not simply delivered (dead-lettered, skipped).</summary>
    public void Outcome(string outcome, string error)
    {
        SettledAs = outcome;
        if (Span is not { } span) return;
        span.SetTag("drakkar.delivery.outcome", outcome);
        PipelineTracing.Fail(span, error);
    }

    /// <summary>
    /// The work was given up before it was settled (partition abandoned, sinks closing); it stays uncommitted. Does
    /// nothing once the group is settled, so every batch ends by dropping what is still open.
    /// </summary>
    public void Drop()
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0) return;
        Outcome("dropped", "abandoned before it was settled; redone from the committed offset");
        PipelineTracing.Stop(Span);
        settlement.GroupDropped();
    }
}

/// <summary>
/// Tracks the groups of one hook call's payloads and reports once, when the last of them is settled or dropped:
/// <c>true</c> when every group was settled (delivered, dead-lettered or skipped), <c>false</c> when some group was
/// dropped (its partition's work was abandoned, or the sinks closed first). The report runs on the delivering thread,
/// so it must be short and must not throw.
/// </summary>
internal sealed class Settlement
{
    private readonly int _payloads;
    private readonly SinkManager _manager;
    private readonly Action<bool, object?> _report;
    private readonly object? _state;
    private int _remaining;
    private int _dropped;

    /// <param name="groups">The groups to wait for.</param>
    /// <param name="payloads">Their payloads, taken off the manager's in-flight count when the last group finishes.</param>
    /// <param name="manager">Whose in-flight count they are on.</param>
    /// <param name="report">Told once, after that, with <paramref name="state"/>.</param>
    /// <param name="state">What <paramref name="report"/> is given.</param>
    public Settlement(int groups, int payloads, SinkManager manager, Action<bool, object?> report, object? state)
    {
        _state = state;
        _remaining = groups;
        _payloads = payloads;
        _manager = manager;
        _report = report;
    }

    public void GroupSettled() => Finish();

    public void GroupDropped()
    {
        Volatile.Write(ref _dropped, 1);
        Finish();
    }

    private void Finish()
    {
        if (Interlocked.Decrement(ref _remaining) != 0) return;
        _manager.Finished(_payloads);
        _report(Volatile.Read(ref _dropped) == 0, _state);
    }
}
