namespace Drakkar.Diagnostics.Recorder;

/// <summary>The newest <c>capacity</c> items, oldest dropped first; safe from any thread.</summary>
internal sealed class RecentRing<T>(int capacity)
{
    private readonly Queue<T> _items = new(Math.Min(capacity, 1024));
    private readonly Lock _gate = new();

    public void Add(T item)
    {
        lock (_gate)
        {
            if (_items.Count == capacity) _items.Dequeue();
            _items.Enqueue(item);
        }
    }

    /// <summary>Newest first, at most <paramref name="limit"/>, those matching <paramref name="keep"/>.</summary>
    public List<T> Newest(int limit, Func<T, bool>? keep = null)
    {
        T[] copy;
        lock (_gate) copy = [.. _items];
        var result = new List<T>(Math.Min(limit, copy.Length));
        for (var i = copy.Length - 1; i >= 0 && result.Count < limit; i--)
            if (keep is null || keep(copy[i])) result.Add(copy[i]);
        return result;
    }
}
