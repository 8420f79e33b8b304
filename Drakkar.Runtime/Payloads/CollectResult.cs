namespace Drakkar;

/// <summary>The payloads a hook returns, one list per sink kind.</summary>
public sealed class CollectResult
{
    // Each list is created on first use: a hook usually fills one kind, and a worker makes one result per task.
    private List<KafkaPayload>? _kafka;
    private List<PostgresPayload>? _postgres;
    private List<MongoPayload>? _mongo;
    private List<RedisPayload>? _redis;
    private List<HttpPayload>? _http;
    private List<FilePayload>? _files;
    private List<CustomPayload>? _custom;

    public List<KafkaPayload> Kafka => _kafka ??= [];
    public List<PostgresPayload> Postgres => _postgres ??= [];
    public List<MongoPayload> Mongo => _mongo ??= [];
    public List<RedisPayload> Redis => _redis ??= [];
    public List<HttpPayload> Http => _http ??= [];
    public List<FilePayload> Files => _files ??= [];
    public List<CustomPayload> Custom => _custom ??= [];

    public int Count => (_kafka?.Count ?? 0) + (_postgres?.Count ?? 0) + (_mongo?.Count ?? 0) + (_redis?.Count ?? 0) +
        (_http?.Count ?? 0) + (_files?.Count ?? 0) + (_custom?.Count ?? 0);

    /// <summary>Every payload, in kind order.</summary>
    public IEnumerable<SinkPayload> All()
    {
        for (var kind = 0; kind < KindLists; kind++)
        {
            if (ListAt(kind) is not { } list) continue;
            for (var i = 0; i < list.Count; i++) yield return list[i];
        }
    }

    /// <summary>How many kind lists <see cref="ListAt"/> walks.</summary>
    internal const int KindLists = 7;

    /// <summary>The kind list at <paramref name="index"/> (0 to <see cref="KindLists"/> − 1, in <see cref="All"/>'s order), or null when no payload of that kind was added: a walk over every payload that allocates nothing.</summary>
    internal IReadOnlyList<SinkPayload>? ListAt(int index) => index switch
    {
        0 => _kafka,
        1 => _postgres,
        2 => _mongo,
        3 => _redis,
        4 => _http,
        5 => _files,
        6 => _custom,
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };
}
