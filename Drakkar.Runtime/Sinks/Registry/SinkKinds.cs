using Drakkar.Sinks;
using Drakkar.Sinks.Filesystem;
using Drakkar.Sinks.Http;
using Drakkar.Sinks.Kafka;
using Drakkar.Sinks.Postgres;
using Drakkar.Sinks.Redis;
using Microsoft.Extensions.Logging;

namespace Drakkar;

/// <summary>
/// The built-in sink kinds: the one list the runtime keeps of them. Configuration paths, metric labels, routing,
/// instance building and batching all read it, and a test checks that the generator's analyzer knows the same
/// payload types.
/// </summary>
public static class SinkKinds
{
    /// <summary>The key under <c>sinks</c> where plugin kinds are configured (<c>sinks.custom.{kind}.{name}</c>).</summary>
    public const string PluginSection = "custom";

    internal static readonly SinkKindDescriptor[] BuiltIn =
    [
        new("kafka", SinkKind.Kafka, typeof(KafkaPayload), s => Instances(s.Kafka),
            c => new KafkaSink(c.Name, (KafkaSinkConfig)c.Settings, c.Config.Kafka, c.Loggers.CreateLogger("Drakkar.Sinks.Kafka"), c.Masker),
            // librdkafka keeps the order of pipelined batches.
            DeliveriesInFlight: 4),
        new("postgres", SinkKind.Postgres, typeof(PostgresPayload), s => Instances(s.Postgres),
            c => new PostgresSink(c.Name, (PostgresSinkConfig)c.Settings, c.Masker),
            // A second pooled connection.
            DeliveriesInFlight: 2),
        // The driver adds ~32 MB to a Native AOT binary, so the sink ships in its own assembly.
        new("mongo", SinkKind.Mongo, typeof(MongoPayload), s => Instances(s.Mongo), Factory: null,
            Package: ("Drakkar.Sinks.MongoDB", "new SinkRegistry().AddMongoDB()")),
        // One batch at a time: a retried batch must not overwrite newer values from the batch after it.
        new("redis", SinkKind.Redis, typeof(RedisPayload), s => Instances(s.Redis),
            c => new RedisSink(c.Name, (RedisSinkConfig)c.Settings, c.Masker, c.Loggers.CreateLogger("Drakkar.Sinks.Redis"))),
        // Two batches at a time: while the last requests of one finish, the next one's already use the free
        // connections. Requests of every batch share the instance's max_connections slots, so the bound holds.
        new("http", SinkKind.Http, typeof(HttpPayload), s => Instances(s.Http),
            c => new HttpSink(c.Name, (HttpSinkConfig)c.Settings, c.Masker, consumerGroup: c.Config.Kafka.ConsumerGroup,
                logger: c.Loggers.CreateLogger("Drakkar.Sinks.Http")),
            DeliveriesInFlight: 2),
        // One batch at a time keeps each file's line order.
        new("filesystem", SinkKind.Filesystem, typeof(FilePayload), s => Instances(s.Filesystem),
            c => new FileSink(c.Name, (FileSinkConfig)c.Settings)),
    ];

    /// <summary>Every payload type with the <see cref="SinkKind"/> it targets, plugin payloads included.</summary>
    internal static IEnumerable<(Type PayloadType, SinkKind Kind)> PayloadKinds =>
        BuiltIn.Select(d => (d.PayloadType, d.Kind)).Append((typeof(CustomPayload), SinkKind.Custom));

    /// <summary>The kind's key under <c>sinks</c>: <c>kafka</c>, … (<c>custom</c> for plugin kinds).</summary>
    public static string ConfigName(SinkKind kind) => kind == SinkKind.Custom ? PluginSection : Of(kind).Name;

    internal static SinkKindDescriptor Of(SinkKind kind)
    {
        // A loop, not Array.Find: this runs per payload (metric labels, routing errors) and a lambda would capture kind.
        foreach (var descriptor in BuiltIn)
            if (descriptor.Kind == kind) return descriptor;
        throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a built-in sink kind");
    }

    /// <summary>The built-in kind configured under <c>sinks.{name}</c>, or null (a plugin kind's name, or unknown).</summary>
    internal static SinkKindDescriptor? Named(string name) => Array.Find(BuiltIn, d => d.Name == name);

    private static IEnumerable<KeyValuePair<string, SinkInstanceConfig>> Instances<T>(Dictionary<string, T> section) where T : SinkInstanceConfig =>
        section.Select(e => KeyValuePair.Create(e.Key, (SinkInstanceConfig)e.Value));
}
