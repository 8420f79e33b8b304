namespace Drakkar.Diagnostics.Recorder;

/// <summary>
/// The newest <c>capacity</c> items, oldest overwritten first; safe from any thread, and without a lock (the recent dead
/// letters, which any delivery thread may add). An add takes a ticket (one atomic increment) and writes its slot; a
/// slot holds the ticket of the item in it, cleared while the item is written, so a reader skips a slot being written
/// or overwritten instead of returning a torn row. (Two adds a whole ring apart racing for one slot could still leave a
/// mixed row; with at least 100 rows that needs a hundred adds during one copy, and the ring only feeds the UI.)
/// Slots come in chunks of <see cref="ChunkSize"/>, made when first reached: a ring that may never fill stays small.
/// (Finished tasks, far more frequent, go to the recording thread's own <see cref="EventLane"/> instead.)
/// </summary>
internal sealed class RecentRing<T>
{
    private const int ChunkSize = 64;

    private readonly int _capacity;
    private readonly Slot[]?[] _chunks;
    // Items ever added; item n (from 1) holds ticket n and lives in slot (n - 1) % capacity.
    private long _added;

    public RecentRing(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _chunks = new Slot[]?[(capacity + ChunkSize - 1) / ChunkSize];
    }

    public void Add(in T item)
    {
        var ticket = Interlocked.Increment(ref _added);
        var index = (int)((ticket - 1) % _capacity);
        var chunk = Volatile.Read(ref _chunks[index / ChunkSize]) ?? NewChunk(index / ChunkSize);
        ref var slot = ref chunk[SlotIn(index)];
        // Cleared with a full fence, so no store of the item moves before it; stamped with a release, so none moves after.
        Interlocked.Exchange(ref slot.Ticket, 0);
        slot.Item = item;
        Volatile.Write(ref slot.Ticket, ticket);
    }

    /// <summary>Newest first, at most <paramref name="limit"/>, those matching <paramref name="keep"/>.</summary>
    public List<T> Newest(int limit, Func<T, bool>? keep = null)
    {
        var result = new List<T>();
        var newest = Volatile.Read(ref _added);
        for (var ticket = newest; ticket > Math.Max(0, newest - _capacity) && result.Count < limit; ticket--)
        {
            var index = (int)((ticket - 1) % _capacity);
            if (Volatile.Read(ref _chunks[index / ChunkSize]) is not { } chunk) continue;
            ref var slot = ref chunk[SlotIn(index)];
            if (Volatile.Read(ref slot.Ticket) != ticket) continue;
            var item = slot.Item;
            Interlocked.MemoryBarrier();
            // Overwritten (or being overwritten) while it was copied: the copy may be torn.
            if (Volatile.Read(ref slot.Ticket) != ticket) continue;
            if (keep is null || keep(item)) result.Add(item);
        }
        return result;
    }

    /// <summary>
    /// Where item <paramref name="index"/> sits in its chunk: consecutive items <see cref="Spread"/> slots apart (a
    /// bijection on the chunk, 7 being odd), so that two cores adding at the same moment write to different cache lines
    /// rather than to the line two neighbouring slots share.
    /// </summary>
    private static int SlotIn(int index) => index % ChunkSize * Spread % ChunkSize;

    private const int Spread = 7;

    private Slot[] NewChunk(int chunk) =>
        Interlocked.CompareExchange(ref _chunks[chunk], new Slot[ChunkSize], null) ?? _chunks[chunk]!;

    private struct Slot
    {
        public long Ticket;
        public T Item;
    }
}
