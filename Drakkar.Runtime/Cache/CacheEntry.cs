namespace Drakkar.Cache;

/// <summary>
/// One cached value as memory, the local database and peers hold it. Times are Unix milliseconds; the newest
/// <see cref="UpdatedAtMs"/> wins everywhere, ties going to the smaller <see cref="OriginWorkerId"/>.
/// </summary>
internal sealed record CacheEntry(string Key, byte[] Value, CacheScope Scope, long CreatedAtMs, long UpdatedAtMs, long? ExpiresAtMs,
    string OriginWorkerId)
{
    public bool ExpiredAt(long nowMs) => ExpiresAtMs is { } expires && expires <= nowMs;

    /// <summary>True when this entry wins over <paramref name="other"/> under last-write-wins.</summary>
    public bool Supersedes(CacheEntry other) =>
        UpdatedAtMs > other.UpdatedAtMs || (UpdatedAtMs == other.UpdatedAtMs && string.CompareOrdinal(OriginWorkerId, other.OriginWorkerId) < 0);
}
