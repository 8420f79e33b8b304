namespace Drakkar;

/// <summary>The payloads a hook returns, one list per sink kind.</summary>
public sealed class CollectResult
{
    public List<KafkaPayload> Kafka { get; } = [];
    public List<PostgresPayload> Postgres { get; } = [];
    public List<MongoPayload> Mongo { get; } = [];
    public List<RedisPayload> Redis { get; } = [];
    public List<HttpPayload> Http { get; } = [];
    public List<FilePayload> Files { get; } = [];
    public List<CustomPayload> Custom { get; } = [];

    public int Count => Kafka.Count + Postgres.Count + Mongo.Count + Redis.Count + Http.Count + Files.Count + Custom.Count;

    /// <summary>Every payload, in kind order.</summary>
    public IEnumerable<SinkPayload> All() =>
        Kafka.Cast<SinkPayload>().Concat(Postgres).Concat(Mongo).Concat(Redis).Concat(Http).Concat(Files).Concat(Custom);
}
