using Microsoft.Extensions.Logging;

namespace Drakkar.Sinks;

/// <summary>What a plugin sink factory receives for one configured instance (<c>sinks.custom.{kind}.{name}</c>).</summary>
/// <param name="Kind">The plugin kind (the key under <c>sinks.custom</c>).</param>
/// <param name="Name">The instance name.</param>
/// <param name="Settings">The instance's keys, as configured, handed over verbatim.</param>
/// <param name="Config">The whole worker configuration (for shared values such as <c>kafka.brokers</c>).</param>
/// <param name="Loggers">For the sink's own log category.</param>
public sealed record CustomSinkContext(
    string Kind,
    string Name,
    IReadOnlyDictionary<string, string> Settings,
    DrakkarConfig Config,
    ILoggerFactory Loggers);

/// <summary>Creates one plugin sink instance.</summary>
public delegate ISink CustomSinkFactory(CustomSinkContext context);

/// <summary>
/// The plugin sink kinds an application knows (SPEC S14). A plugin assembly exposes a registration method that the
/// application calls at compile time — <c>registry.Register("my_kind", ctx =&gt; new MySink(ctx))</c> — so nothing is
/// discovered by scanning assemblies and a trimmed Native AOT binary keeps every kind it uses.
/// </summary>
public sealed class SinkRegistry
{
    private readonly Dictionary<string, CustomSinkFactory> _factories = new(StringComparer.Ordinal);

    /// <summary>Registers <paramref name="kind"/>; config instances under <c>sinks.custom.{kind}</c> are built by <paramref name="factory"/>.</summary>
    public SinkRegistry Register(string kind, CustomSinkFactory factory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(kind);
        ArgumentNullException.ThrowIfNull(factory);
        if (SinkKey.BuiltInKind(kind) is not null || kind == "custom")
            throw new InvalidOperationException($"Plugin sink kind '{kind}' is a built-in kind's name; give the plugin kind its own name.");
        if (!_factories.TryAdd(kind, factory))
            throw new InvalidOperationException($"Plugin sink kind '{kind}' is registered twice; each kind needs exactly one factory.");
        return this;
    }

    /// <summary>The registered plugin kinds, sorted.</summary>
    public IReadOnlyList<string> Kinds => [.. _factories.Keys.Order(StringComparer.Ordinal)];

    internal bool TryGet(string kind, out CustomSinkFactory factory) => _factories.TryGetValue(kind, out factory!);
}
