using Drakkar.Pipeline;

namespace Drakkar.Sinks.Delivery;

/// <summary>
/// The payloads one hook call returned for one sink instance: the unit the retry contract, <c>OnDeliveryError</c>
/// and the DLQ act on, however many groups share a batch.
/// </summary>
internal sealed class PayloadGroup(List<SinkPayload> payloads, DeliveryOrigin origin, Settlement settlement, CancellationToken abandoned)
{
    public List<SinkPayload> Payloads { get; } = payloads;
    public DeliveryOrigin Origin { get; } = origin;

    /// <summary>Cancelled when the source partition's work was abandoned (lost, rewound, drain timed out).</summary>
    public CancellationToken Abandoned { get; } = abandoned;

    private int _finished;

    public int Count => Payloads.Count;

    /// <summary>Every payload is delivered, dead-lettered or skipped.</summary>
    public void Settle()
    {
        if (Interlocked.Exchange(ref _finished, 1) == 0) settlement.GroupSettled();
    }

    /// <summary>
    /// The work was given up before it was settled (partition abandoned, sinks closing); it stays uncommitted. Does
    /// nothing once the group is settled, so every batch ends by dropping what is still open.
    /// </summary>
    public void Drop()
    {
        if (Interlocked.Exchange(ref _finished, 1) == 0) settlement.GroupDropped(Abandoned);
    }
}

/// <summary>Completes when every group of one hook call's payloads is settled (or the work was abandoned).</summary>
internal sealed class Settlement
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<int> _released;
    private readonly int _payloads;
    private int _remaining;
    private CancellationToken _dropped;
    private bool _anyDropped;

    /// <param name="groups">How many groups must settle.</param>
    /// <param name="payloads">How many payloads the groups hold (handed to <paramref name="released"/> once, at the end).</param>
    /// <param name="released">Told how many payloads left flight when the last group settles.</param>
    public Settlement(int groups, int payloads, Action<int> released)
    {
        _remaining = groups;
        _payloads = payloads;
        _released = released;
    }

    public Task Task => _done.Task;

    public void GroupSettled() => Finish();

    public void GroupDropped(CancellationToken abandoned)
    {
        lock (_done)
        {
            _dropped = abandoned;
            _anyDropped = true;
        }
        Finish();
    }

    private void Finish()
    {
        if (Interlocked.Decrement(ref _remaining) != 0) return;
        _released(_payloads);
        bool dropped;
        lock (_done) dropped = _anyDropped;
        if (dropped) _done.TrySetCanceled(_dropped);
        else _done.TrySetResult();
    }
}
