namespace Drakkar.Execution;

/// <summary>
/// A counting semaphore whose waiters are served in priority order (lower first, FIFO among equals) instead of
/// arrival order. A released slot is handed straight to the best waiter, so a newcomer can never overtake the
/// queue while anyone waits.
/// </summary>
internal sealed class PriorityGate
{
    // Cancelled waiters stay in the heap (removing from the middle is O(n)) until a release pops them, or until
    // they outnumber the live ones — then the heap is rebuilt, so mass cancellation (a revoke) costs O(n) once.
    private const int CompactionThreshold = 64;

    private readonly Lock _lock = new();
    private readonly PriorityQueue<Waiter, (long Priority, long Sequence)> _queue = new();
    private int _available;
    private int _waiting;
    private int _cancelled;
    private long _sequence;

    public PriorityGate(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _available = capacity;
    }

    public int Capacity { get; }

    /// <summary>Slots currently held.</summary>
    public int InUse
    {
        get
        {
            lock (_lock)
            {
                return Capacity - _available;
            }
        }
    }

    /// <summary>Callers waiting for a slot (cancelled ones excluded).</summary>
    public int Waiting
    {
        get
        {
            lock (_lock)
            {
                return _waiting;
            }
        }
    }

    /// <summary>
    /// Takes a slot, waiting behind every queued caller with a lower (or equal and earlier) priority. The caller
    /// must <see cref="Release"/> the slot once this completes successfully; a cancelled wait holds nothing.
    /// </summary>
    public ValueTask WaitAsync(long priority, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        Waiter waiter;
        lock (_lock)
        {
            if (_available > 0 && _waiting == 0)
            {
                _available--;
                return ValueTask.CompletedTask;
            }

            waiter = new Waiter(this);
            _queue.Enqueue(waiter, (priority, _sequence++));
            _waiting++;
        }

        if (cancellationToken.CanBeCanceled)
        {
            waiter.WatchCancellation(cancellationToken);
        }

        return new ValueTask(waiter.Task);
    }

    /// <summary>Returns a slot: the best live waiter gets it, or it becomes free.</summary>
    public void Release()
    {
        Waiter? next = null;
        lock (_lock)
        {
            while (_queue.TryDequeue(out var candidate, out _))
            {
                if (candidate.IsCancelled)
                {
                    _cancelled--;
                    continue;
                }

                candidate.IsGranted = true;
                _waiting--;
                next = candidate;
                break;
            }

            if (next is null)
            {
                if (_available == Capacity)
                {
                    throw new InvalidOperationException("PriorityGate.Release called more times than slots were taken.");
                }

                _available++;
            }
        }

        next?.Grant();
    }

    private bool TryCancel(Waiter waiter)
    {
        lock (_lock)
        {
            if (waiter.IsGranted)
            {
                return false;
            }

            waiter.IsCancelled = true;
            _waiting--;
            _cancelled++;
            if (_cancelled > CompactionThreshold && _cancelled > _waiting)
            {
                var live = new List<(Waiter, (long, long))>(_waiting);
                foreach (var entry in _queue.UnorderedItems)
                {
                    if (!entry.Element.IsCancelled)
                    {
                        live.Add(entry);
                    }
                }

                _queue.Clear();
                _queue.EnqueueRange(live);
                _cancelled = 0;
            }

            return true;
        }
    }

    private sealed class Waiter(PriorityGate gate)
    {
        // Continuations run on the thread pool: a release happens in another task's cleanup, which must not
        // end up spawning the next process inline.
        private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly PriorityGate _gate = gate;
        private CancellationTokenRegistration _registration;

        public Task Task => _completion.Task;

        // Both flags are read and written under the gate's lock.
        public bool IsGranted { get; set; }

        public bool IsCancelled { get; set; }

        public void WatchCancellation(CancellationToken cancellationToken)
        {
            _registration = cancellationToken.UnsafeRegister(
                static (state, token) =>
                {
                    var waiter = (Waiter)state!;
                    if (waiter._gate.TryCancel(waiter))
                    {
                        waiter._completion.TrySetCanceled(token);
                    }
                },
                this);
        }

        public void Grant()
        {
            // Unregister (not Dispose): Dispose would wait for a concurrently running callback, which is harmless
            // here because TryCancel refuses a granted waiter.
            _registration.Unregister();
            _completion.TrySetResult();
        }
    }
}
