namespace Drakkar;

/// <summary>A sink instance a handler declares with <see cref="SinkAttribute"/>; emitted by the generator.</summary>
public sealed record SinkDeclaration(SinkKind Kind, string Name, string? CustomKind = null)
{
    /// <summary>The configuration path of this instance, e.g. <c>sinks.kafka.results</c>.</summary>
    public string ConfigPath => Sinks.SinkKey.ConfigPathOf(Kind, CustomKind, Name);
}

/// <summary>A periodic method; emitted by the generator from <see cref="PeriodicAttribute"/>.</summary>
public sealed record PeriodicRegistration(
    string Name,
    TimeSpan Interval,
    PeriodicOnError OnError,
    Func<CancellationToken, ValueTask> Run);
