namespace Drakkar;

/// <summary>What every payload has: the sink instance it targets and its data.</summary>
public abstract record SinkPayload(string Sink, PayloadData Data)
{
    /// <summary>The built-in kind this payload goes to.</summary>
    public abstract SinkKind Kind { get; }
}

/// <summary>A record produced to the Kafka sink's topic: value = compact JSON of the data.</summary>
public sealed record KafkaPayload(string Sink, PayloadData Data, byte[]? Key) : SinkPayload(Sink, Data)
{
    public override SinkKind Kind => SinkKind.Kafka;
    public static KafkaPayload Of<T>(T data, byte[]? key = null, string sink = "") where T : IPayload<T> =>
        new(sink, PayloadData.Of(data), key);
}

/// <summary>A row inserted into <see cref="Table"/> of the PostgreSQL sink.</summary>
public sealed record PostgresPayload(string Sink, PayloadData Data, string Table) : SinkPayload(Sink, Data)
{
    public override SinkKind Kind => SinkKind.Postgres;
    public static PostgresPayload Of<T>(string table, T data, string sink = "") where T : IPayload<T> =>
        new(sink, PayloadData.Of(data), table);
}

/// <summary>A document inserted into <see cref="Collection"/> of the MongoDB sink's database.</summary>
public sealed record MongoPayload(string Sink, PayloadData Data, string Collection) : SinkPayload(Sink, Data)
{
    public override SinkKind Kind => SinkKind.Mongo;
    public static MongoPayload Of<T>(string collection, T data, string sink = "") where T : IPayload<T> =>
        new(sink, PayloadData.Of(data), collection);

    /// <summary>Why the MongoDB sink refuses <see cref="Collection"/> (empty, a NUL, <c>$…</c> or <c>system.…</c>), or null.</summary>
    internal string? CollectionRefusal() =>
        Collection.Length > 0 && !Collection.Contains('\0', StringComparison.Ordinal) && !Collection.StartsWith('$')
        && !Collection.StartsWith("system.", StringComparison.Ordinal)
            ? null
            : $"'{Collection}' is not a valid MongoDB collection name (a {Data.TypeName} payload).";
}

/// <summary>A <c>SET {key_prefix}{key} {json} [EX ttl]</c> on the Redis sink.</summary>
public sealed record RedisPayload(string Sink, PayloadData Data, string Key, TimeSpan? Ttl) : SinkPayload(Sink, Data)
{
    public override SinkKind Kind => SinkKind.Redis;
    public static RedisPayload Of<T>(string key, T data, TimeSpan? ttl = null, string sink = "") where T : IPayload<T>
    {
        // An empty key is the Redis sink's to refuse (that payload alone, into the DLQ), not an exception in the hook.
        ArgumentNullException.ThrowIfNull(key);
        if (ttl is { } t && t.TotalSeconds < 1)
            throw new ArgumentOutOfRangeException(nameof(ttl), t, $"Redis payload '{key}': ttl must be at least one second (or null for no expiry).");
        return new(sink, PayloadData.Of(data), key, ttl);
    }
}

/// <summary>A JSON request to the HTTP sink's endpoint.</summary>
public sealed record HttpPayload(string Sink, PayloadData Data) : SinkPayload(Sink, Data)
{
    public override SinkKind Kind => SinkKind.Http;
    public static HttpPayload Of<T>(T data, string sink = "") where T : IPayload<T> => new(sink, PayloadData.Of(data));
}

/// <summary>A JSON line appended to <see cref="Path"/> (relative to the filesystem sink's <c>base_path</c>).</summary>
public sealed record FilePayload(string Sink, PayloadData Data, string Path) : SinkPayload(Sink, Data)
{
    public override SinkKind Kind => SinkKind.Filesystem;
    public static FilePayload Of<T>(string path, T data, string sink = "") where T : IPayload<T>
    {
        // An empty path is the filesystem sink's to refuse (that payload's group, into the DLQ), not an exception in the hook.
        ArgumentNullException.ThrowIfNull(path);
        return new(sink, PayloadData.Of(data), path);
    }
}

/// <summary>A payload for a plugin sink kind (configured under <c>sinks.custom.{kind}.{instance}</c>).</summary>
public sealed record CustomPayload(string CustomKind, string Sink, PayloadData Data) : SinkPayload(Sink, Data)
{
    public override SinkKind Kind => SinkKind.Custom;
    public static CustomPayload Of<T>(string kind, T data, string sink = "") where T : IPayload<T>
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        return new(kind, sink, PayloadData.Of(data));
    }
}
