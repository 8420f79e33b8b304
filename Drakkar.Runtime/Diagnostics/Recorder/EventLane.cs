namespace Drakkar.Diagnostics.Recorder;

/// <summary>
/// One recording thread's events, in the order it recorded them (ascending seq): a ring of <see cref="Capacity"/>
/// slots that only its owner thread writes, and that the recorder's writer (storing them) and the debug UI (showing
/// the newest) read. Adding an event is a copy into the next slot and one ordinary store of the count: no lock, no
/// atomic instruction, no second copy (a shared ring with a ticket per slot, a buffer per thread behind a lock, and the
/// copy into each cost a busy worker several per cent of its throughput; docs/performance.md).
/// A reader never waits either. The owner overwrites the oldest slot when the ring is full, so a reader copies an
/// event and then checks that the owner has not come within <see cref="Margin"/> events of that slot meanwhile; the
/// margin is far beyond any reordering of the owner's stores, so what passes the check is whole.
/// Slots come in chunks of <see cref="ChunkSize"/>, made when the owner first reaches them: a thread that records once
/// (a rebalance callback) holds one chunk, a busy pipeline thread fills its ring and keeps it (no outgrown arrays).
/// </summary>
internal sealed class EventLane
{
    /// <summary>The newest events a reader may still take: a slot this close to being overwritten is skipped.</summary>
    internal const int Margin = 256;

    private const int ChunkShift = 8;
    private const int ChunkSize = 1 << ChunkShift;

    private readonly FlightEvent[]?[] _chunks;
    private readonly long _mask;
    // Events ever added; event n (from 0) is in slot n & _mask. Written by the owner only.
    private long _written;

    public EventLane(int capacity, Thread owner)
    {
        Capacity = (int)Math.Max(ChunkSize, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity));
        _mask = Capacity - 1;
        _chunks = new FlightEvent[]?[Capacity >> ChunkShift];
        Owner = owner;
    }

    /// <summary>Slots in the ring (a power of two, at least the capacity asked for).</summary>
    public int Capacity { get; }

    /// <summary>The thread that adds to this lane; another takes the lane over only once this one has ended.</summary>
    public Thread Owner { get; set; }

    /// <summary>Events ever added.</summary>
    public long Written => Volatile.Read(ref _written);

    /// <summary>The writer's position: events before it are stored or counted as dropped. Only the writer sets it.</summary>
    public long Stored
    {
        get => Volatile.Read(ref _stored);
        set => Volatile.Write(ref _stored, value);
    }

    private long _stored;

    /// <summary>The oldest event a reader may take now.</summary>
    public long OldestReadable => Math.Max(0, Written - (Capacity - Margin));

    /// <summary>The oldest event the writer has not stored that is still readable.</summary>
    public long Unstored => Math.Max(Stored, OldestReadable);

    /// <summary>
    /// The slot of <paramref name="position"/>, read in place: the reader checks <see cref="IntactFrom"/> once it has
    /// read what it wanted, since the owner may have reached the slot meanwhile.
    /// </summary>
    public ref readonly FlightEvent Slot(long position)
    {
        var index = position & _mask;
        return ref Volatile.Read(ref _chunks[index >> ChunkShift])![index & (ChunkSize - 1)];
    }

    /// <summary>
    /// The oldest position whose slot, read before this call, was whole: the owner had not come within
    /// <see cref="Margin"/> events of overwriting it.
    /// </summary>
    public long IntactFrom()
    {
        Interlocked.MemoryBarrier();
        return OldestReadable;
    }

    /// <summary>Appends <paramref name="e"/>; only <see cref="Owner"/> calls this.</summary>
    public void Add(in FlightEvent e)
    {
        var n = _written;
        var index = n & _mask;
        var chunk = _chunks[index >> ChunkShift] ?? NewChunk((int)(index >> ChunkShift));
        chunk[index & (ChunkSize - 1)] = e;
        // Publishes the event: a reader that sees the new count sees the whole slot.
        Volatile.Write(ref _written, n + 1);
    }

    /// <summary>
    /// Copies the event at <paramref name="position"/> into <paramref name="e"/>; false if it is not written yet, or has
    /// been, or may be being, overwritten.
    /// </summary>
    public bool TryRead(long position, out FlightEvent e)
    {
        if (position < OldestReadable || position >= Written)
        {
            e = default;
            return false;
        }
        e = Slot(position);
        // Copied before the owner came within the margin of this slot: whole.
        return position >= IntactFrom();
    }

    private FlightEvent[] NewChunk(int chunk)
    {
        var slots = new FlightEvent[ChunkSize];
        Volatile.Write(ref _chunks[chunk], slots);
        return slots;
    }
}
