using Drakkar.Sinks.Filesystem;
using Drakkar.Sinks.Http;
using Drakkar.Sinks.Kafka;
using Drakkar.Sinks.Mongo;
using Drakkar.Sinks.Postgres;
using Drakkar.Sinks.Redis;
using Microsoft.Extensions.Logging;

namespace Drakkar.Sinks;

/// <summary>Turns <c>sinks:</c> configuration into sink instances, reporting every problem at once.</summary>
internal static class SinkFactory
{
    public static List<ISink> Build(DrakkarConfig config, IReadOnlyList<SinkDeclaration> declared, SinkRegistry plugins,
        SinkSecretMasker masker, ILoggerFactory loggers)
    {
        var sinks = config.Sinks;
        var problems = new List<string>();

        foreach (var kind in sinks.Custom.Keys)
        {
            if (!plugins.TryGet(kind, out _))
                problems.Add($"sinks.custom.{kind}: unknown plugin sink kind '{kind}'. Known plugin kinds: " +
                    (plugins.Kinds.Count == 0 ? "none registered" : string.Join(", ", plugins.Kinds)) +
                    ". Register the plugin's kind with SinkRegistry.Register before the worker starts.");
        }
        foreach (var declaration in declared)
        {
            if (!IsConfigured(sinks, declaration))
                problems.Add($"{declaration.ConfigPath}: the handler declares this sink but it is not configured; add it under {declaration.ConfigPath} or remove the [Sink] declaration.");
        }

        var built = new List<ISink>();
        void Add(string path, Func<ISink> create)
        {
            try
            {
                built.Add(create());
            }
            catch (SinkConfigurationException e)
            {
                problems.Add(masker.Apply(e.Message));
            }
            catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException)
            {
                problems.Add($"{path}: {masker.Apply(e.Message)}");
            }
        }

        foreach (var (name, c) in sinks.Kafka)
            Add($"sinks.kafka.{name}", () => new KafkaSink(name, c, config.Kafka.Brokers, loggers.CreateLogger("Drakkar.Sinks.Kafka"), masker));
        foreach (var (name, c) in sinks.Postgres)
            Add($"sinks.postgres.{name}", () => new PostgresSink(name, c, masker));
        foreach (var (name, c) in sinks.Mongo)
            Add($"sinks.mongo.{name}", () => new MongoSink(name, c, masker));
        foreach (var (name, c) in sinks.Redis)
            Add($"sinks.redis.{name}", () => new RedisSink(name, c, masker, loggers.CreateLogger("Drakkar.Sinks.Redis")));
        foreach (var (name, c) in sinks.Http)
            Add($"sinks.http.{name}", () => new HttpSink(name, c, masker));
        foreach (var (name, c) in sinks.Filesystem)
            Add($"sinks.filesystem.{name}", () => new FileSink(name, c));
        foreach (var (kind, instances) in sinks.Custom)
        {
            if (!plugins.TryGet(kind, out var factory)) continue;
            foreach (var (name, c) in instances)
            {
                var path = $"sinks.custom.{kind}.{name}";
                Add(path, () =>
                {
                    var sink = factory(new CustomSinkContext(kind, name, c.Settings, config, loggers));
                    if (sink.Kind != kind || sink.Name != name)
                        throw new SinkConfigurationException(
                            $"{path}: the plugin built a sink that calls itself {sink.Kind}/{sink.Name}; it must report kind '{kind}' and name '{name}'.");
                    return sink;
                });
            }
        }

        if (problems.Count > 0)
            throw new SinkConfigurationException($"The sinks configuration has {problems.Count} problem(s):\n  " + string.Join("\n  ", problems));
        return built;
    }

    private static bool IsConfigured(SinksConfig sinks, SinkDeclaration declaration) => declaration.Kind == SinkKind.Custom
        ? declaration.CustomKind is { } kind && sinks.Custom.TryGetValue(kind, out var instances) && instances.ContainsKey(declaration.Name)
        : InstanceConfig(sinks, declaration.Kind, declaration.Name) is not null;

    /// <summary>A built-in sink instance's settings, or null when it is not configured (or the kind is a plugin's).</summary>
    public static SinkInstanceConfig? InstanceConfig(SinksConfig sinks, SinkKind kind, string name) => kind switch
    {
        SinkKind.Kafka => sinks.Kafka.GetValueOrDefault(name),
        SinkKind.Postgres => sinks.Postgres.GetValueOrDefault(name),
        SinkKind.Mongo => sinks.Mongo.GetValueOrDefault(name),
        SinkKind.Redis => sinks.Redis.GetValueOrDefault(name),
        SinkKind.Http => sinks.Http.GetValueOrDefault(name),
        SinkKind.Filesystem => sinks.Filesystem.GetValueOrDefault(name),
        _ => null,
    };

    /// <summary>
    /// Each instance's <c>batch_size</c> and <c>linger_ms</c>; plugin kinds get <see cref="SinkBatching.Default"/>.
    /// Deliveries in flight per instance: Kafka pipelines batches (librdkafka keeps their order), PostgreSQL uses a
    /// second pooled connection; the others take one batch at a time (Redis: a retried batch must not overwrite the
    /// newer values of the batch after it; MongoDB holds one connection; files keep their line order; HTTP sends a
    /// batch's requests concurrently already, up to HttpSink.MaxConcurrentRequests).
    /// </summary>
    public static Func<string, string, SinkBatching> Batching(SinksConfig sinks) => (kind, name) =>
        SinkKey.BuiltInKind(kind) is { } builtIn && InstanceConfig(sinks, builtIn, name) is { } config
            ? new SinkBatching(config.BatchSize, TimeSpan.FromMilliseconds(config.LingerMs), builtIn switch
            {
                SinkKind.Kafka => 4,
                SinkKind.Postgres => 2,
                _ => 1,
            }, config.OnOutage)
            : SinkBatching.Default with { OnOutage = OutagePolicy.Pause };
}
