namespace Drakkar.Pipeline;

/// <summary>
/// The watermark of one partition: offsets are registered in consumption order and marked done in any order;
/// the committable offset is one past the longest done prefix, so a commit never passes an unfinished message.
/// Not thread-safe: the owning pipeline serializes access.
/// </summary>
internal sealed class OffsetTracker
{
    private readonly Queue<long> _registered = new();
    private readonly HashSet<long> _done = [];
    private long _lastRegistered = -1;

    /// <summary>One past the last offset of the completed prefix; -1 while nothing has completed.</summary>
    public long Committable { get; private set; } = -1;

    /// <summary>Offsets registered and not yet part of the completed prefix.</summary>
    public int Outstanding => _registered.Count;

    /// <summary>Offsets done beyond the completed prefix (waiting for an earlier one).</summary>
    public int DoneAhead => _done.Count;

    /// <summary>The last offset seen (for lag), or -1.</summary>
    public long LastRegistered => _lastRegistered;

    public void Register(long offset)
    {
        if (offset <= _lastRegistered)
            throw new InvalidOperationException($"offset {offset} registered after {_lastRegistered}: offsets must arrive in order");
        _lastRegistered = offset;
        _registered.Enqueue(offset);
    }

    /// <summary>Marks <paramref name="offset"/> done; returns true when the committable offset moved.</summary>
    public bool MarkDone(long offset)
    {
        _done.Add(offset);
        var moved = false;
        while (_registered.Count > 0 && _done.Remove(_registered.Peek()))
        {
            Committable = _registered.Dequeue() + 1;
            moved = true;
        }
        return moved;
    }
}
