namespace Drakkar;

/// <summary>Which workers may pull a cache entry through peer sync (Drakkar's <c>CacheScope</c>).</summary>
public enum CacheScope
{
    /// <summary>This worker only; peers never pull it.</summary>
    Local,

    /// <summary>Pulled by peers of the same cluster: the same <c>kafka.consumer_group</c> and cluster name.</summary>
    Cluster,

    /// <summary>Pulled by every peer sharing the cache directory.</summary>
    Global,
}
