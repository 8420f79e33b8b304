namespace Drakkar;

/// <summary>A sink instance a handler declares with <see cref="SinkAttribute"/>; emitted by the generator.</summary>
public sealed record SinkDeclaration(SinkKind Kind, string Name, string? CustomKind = null)
{
    /// <summary>The configuration path of this instance, e.g. <c>sinks.kafka.results</c>.</summary>
    public string ConfigPath => Kind == SinkKind.Custom
        ? $"sinks.custom.{CustomKind}.{Name}"
        : $"sinks.{SinkKinds.ConfigName(Kind)}.{Name}";
}

/// <summary>A periodic method; emitted by the generator from <see cref="PeriodicAttribute"/>.</summary>
public sealed record PeriodicRegistration(
    string Name,
    TimeSpan Interval,
    PeriodicOnError OnError,
    Func<CancellationToken, ValueTask> Run);

/// <summary>Names of the sink kinds as they appear in configuration.</summary>
public static class SinkKinds
{
    public static string ConfigName(SinkKind kind) => kind switch
    {
        SinkKind.Kafka => "kafka",
        SinkKind.Postgres => "postgres",
        SinkKind.Mongo => "mongo",
        SinkKind.Redis => "redis",
        SinkKind.Http => "http",
        SinkKind.Filesystem => "filesystem",
        SinkKind.Custom => "custom",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}
