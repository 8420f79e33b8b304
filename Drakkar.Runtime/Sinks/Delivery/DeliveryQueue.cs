using System.Threading.Channels;

namespace Drakkar.Sinks.Delivery;

/// <summary>
/// The queue of one sink instance: hook calls from every partition add their payload groups, and one drainer takes
/// up to <c>batch_size</c> payloads at a time (waiting at most <c>linger_ms</c> for a batch to fill) and hands them
/// over as one delivery. Up to <c>concurrency</c> deliveries are in flight at once; while they are, the next batch
/// accumulates, so batches grow with the load and an idle worker does not wait. Groups are never split across
/// batches; one larger than the batch size goes alone.
/// </summary>
internal sealed class DeliveryQueue
{
    private readonly Channel<PayloadGroup> _channel = Channel.CreateUnbounded<PayloadGroup>(new UnboundedChannelOptions { SingleReader = true });
    private readonly int _batchSize;
    private readonly TimeSpan _linger;
    private readonly Func<List<PayloadGroup>, Task> _deliver;
    private readonly SemaphoreSlim _slots;
    private readonly int _concurrency;
    private readonly Func<bool> _turningAway;
    private readonly Task _drainer;
    private TaskCompletionSource? _filled;
    private int _queued;

    /// <param name="batchSize">The most payloads one delivery carries.</param>
    /// <param name="linger">How long a batch may wait to fill.</param>
    /// <param name="concurrency">How many deliveries may be in flight at once.</param>
    /// <param name="turningAway">
    /// True while every batch would be turned away at once (the circuit is open): such batches do not wait for a
    /// delivery slot, so payloads queued behind a slow probe reach the DLQ as they would have without a queue.
    /// </param>
    /// <param name="deliver">Delivers one batch and settles (or drops) every group in it; must not throw.</param>
    public DeliveryQueue(int batchSize, TimeSpan linger, int concurrency, Func<bool> turningAway, Func<List<PayloadGroup>, Task> deliver)
    {
        _turningAway = turningAway;
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(concurrency, 1);
        _batchSize = batchSize;
        _linger = linger;
        _concurrency = concurrency;
        _slots = new SemaphoreSlim(concurrency, concurrency);
        _deliver = deliver;
        _drainer = Task.Run(DrainAsync);
    }

    /// <summary>Payloads waiting for a batch.</summary>
    public int QueuedPayloads => Volatile.Read(ref _queued);

    /// <summary>Queues a group; false once the queue was completed (the worker is closing its sinks).</summary>
    public bool TryEnqueue(PayloadGroup group)
    {
        var queued = Interlocked.Add(ref _queued, group.Count);
        if (!_channel.Writer.TryWrite(group))
        {
            Interlocked.Add(ref _queued, -group.Count);
            return false;
        }
        if (queued >= _batchSize) Volatile.Read(ref _filled)?.TrySetResult();
        return true;
    }

    /// <summary>Takes no new groups and completes once everything queued was handed over and delivered.</summary>
    public Task CompleteAsync()
    {
        _channel.Writer.TryComplete();
        return _drainer;
    }

    private async Task DrainAsync()
    {
        var reader = _channel.Reader;
        var bypassing = new List<Task>();
        PayloadGroup? carried = null;
        while (carried is not null || await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // A free delivery slot first: while every slot is busy, payloads keep accumulating into the next batch.
            var slot = await TakeSlotAsync().ConfigureAwait(false);
            if (_linger > TimeSpan.Zero && Volatile.Read(ref _queued) < _batchSize) await LingerAsync().ConfigureAwait(false);
            var batch = new List<PayloadGroup>();
            var count = 0;
            if (carried is not null)
            {
                batch.Add(carried);
                count = carried.Count;
                carried = null;
            }
            while (count < _batchSize && reader.TryRead(out var group))
            {
                if (group.Abandoned.IsCancellationRequested)
                {
                    Interlocked.Add(ref _queued, -group.Count);
                    group.Drop();
                    continue;
                }
                if (count > 0 && count + group.Count > _batchSize)
                {
                    carried = group;
                    break;
                }
                batch.Add(group);
                count += group.Count;
            }
            Interlocked.Add(ref _queued, -count);
            if (batch.Count == 0)
            {
                if (slot) _slots.Release();
                continue;
            }
            var delivery = DeliverAsync(batch, slot);
            if (!slot)
            {
                bypassing.RemoveAll(t => t.IsCompleted);
                bypassing.Add(delivery);
            }
        }
        await Task.WhenAll(bypassing).ConfigureAwait(false);
        // Every slot back: the deliveries still in flight have finished.
        for (var i = 0; i < _concurrency; i++) await _slots.WaitAsync().ConfigureAwait(false);
    }

    /// <summary>Waits for a delivery slot (true), or stops waiting when batches are being turned away anyway (false).</summary>
    private async Task<bool> TakeSlotAsync()
    {
        while (true)
        {
            if (await _slots.WaitAsync(TurnAwayCheck).ConfigureAwait(false)) return true;
            if (_turningAway()) return false;
        }
    }

    private static readonly TimeSpan TurnAwayCheck = TimeSpan.FromMilliseconds(50);

    private async Task DeliverAsync(List<PayloadGroup> batch, bool slot)
    {
        try
        {
            await _deliver(batch).ConfigureAwait(false);
        }
        finally
        {
            if (slot) _slots.Release();
        }
    }

    /// <summary>Waits until a full batch is queued or the linger time passed, whichever comes first.</summary>
    private async Task LingerAsync()
    {
        var filled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _filled, filled);
        if (Volatile.Read(ref _queued) < _batchSize)
            await Task.WhenAny(filled.Task, Task.Delay(_linger)).ConfigureAwait(false);
        Volatile.Write(ref _filled, null);
    }
}
