using Microsoft.Extensions.Logging;

namespace Drakkar.Sinks;

/// <summary>What a plugin sink factory receives for one configured instance (<c>sinks.custom.{kind}.{name}</c>).</summary>
/// <param name="Kind">The plugin kind (the key under <c>sinks.custom</c>).</param>
/// <param name="Name">The instance name.</param>
/// <param name="Settings">The instance's own keys, as configured, handed over verbatim; the delivery keys every instance has (<c>batch_size</c>, <c>linger_ms</c>, <c>on_outage</c>, <c>attempt_timeout_seconds</c>, <c>ui_url</c>) are Drakkar's and not among them.</param>
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
/// The sink kinds a worker can build: the built-in kinds (<see cref="SinkKinds"/>), the built-in kinds whose
/// implementation ships in its own package (MongoDB: <c>registry.AddMongoDB()</c> from <c>Drakkar.Sinks.MongoDB</c>)
/// and plugin kinds (SPEC S14). Everything is registered at compile time —
/// <c>registry.Register("my_kind", ctx =&gt; new MySink(ctx))</c> — so nothing is discovered by scanning assemblies
/// and a trimmed Native AOT binary keeps exactly the kinds it uses.
/// </summary>
public sealed class SinkRegistry
{
    private readonly Dictionary<SinkKind, SinkFactory> _provided = [];
    private readonly Dictionary<string, CustomSinkFactory> _plugins = new(StringComparer.Ordinal);

    /// <summary>
    /// Supplies the implementation of built-in <paramref name="kind"/> when it ships in its own package (a package's
    /// registration method calls this, e.g. <c>AddMongoDB()</c>); instances under <c>sinks.{kind}</c> are built by
    /// <paramref name="factory"/>.
    /// </summary>
    public SinkRegistry Register(SinkKind kind, SinkFactory factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        if (kind == SinkKind.Custom)
            throw new ArgumentException("Plugin kinds are registered by name: Register(\"my_kind\", factory).", nameof(kind));
        var descriptor = SinkKinds.Of(kind);
        if (descriptor.Factory is not null)
            throw new InvalidOperationException($"The {descriptor.Name} sink is part of the runtime; it cannot be registered again.");
        if (!_provided.TryAdd(kind, factory))
            throw new InvalidOperationException($"The {descriptor.Name} sink is registered twice; call its registration once.");
        return this;
    }

    /// <summary>Registers plugin <paramref name="kind"/>; config instances under <c>sinks.custom.{kind}</c> are built by <paramref name="factory"/>.</summary>
    public SinkRegistry Register(string kind, CustomSinkFactory factory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(kind);
        ArgumentNullException.ThrowIfNull(factory);
        // Refused in any case ("Kafka" too): a plugin whose kind differs from a built-in one only by case is a mistake.
        if (SinkKinds.BuiltIn.Any(d => string.Equals(d.Name, kind, StringComparison.OrdinalIgnoreCase))
            || string.Equals(kind, SinkKinds.PluginSection, StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"Plugin sink kind '{kind}' is a built-in kind's name; give the plugin kind its own name.");
        if (!_plugins.TryAdd(kind, factory))
            throw new InvalidOperationException($"Plugin sink kind '{kind}' is registered twice; each kind needs exactly one factory.");
        return this;
    }

    /// <summary>The registered plugin kinds, sorted.</summary>
    public IReadOnlyList<string> PluginKinds => [.. _plugins.Keys.Order(StringComparer.Ordinal)];

    /// <summary>
    /// Builds every configured instance, after checking that every sink the handler declares is configured, that
    /// every configured kind has an implementation, and that every plugin kind in config is registered; every
    /// problem is reported at once.
    /// </summary>
    internal List<ISink> Build(DrakkarConfig config, IReadOnlyList<SinkDeclaration> declared, SinkSecretMasker masker, ILoggerFactory loggers)
    {
        var sinks = config.Sinks;
        var problems = RegistrationProblems(config).ToList();
        problems.AddRange(DeclarationProblems(config, declared));

        var built = new List<ISink>();
        void Add(string path, string kind, string name, Func<ISink> create)
        {
            try
            {
                var sink = create();
                if (sink.Kind != kind || sink.Name != name)
                    throw new SinkConfigurationException(
                        $"{path}: the factory built a sink that calls itself {sink.Kind}/{sink.Name}; it must report kind '{kind}' and name '{name}'.");
                built.Add(sink);
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

        foreach (var descriptor in SinkKinds.BuiltIn)
        {
            var factory = descriptor.Factory ?? _provided.GetValueOrDefault(descriptor.Kind);
            if (factory is null) continue;
            foreach (var (name, settings) in descriptor.Instances(sinks))
            {
                var path = descriptor.ConfigPath(name);
                Add(path, descriptor.Name, name, () => factory(new SinkContext(descriptor.Name, name, settings, config, loggers, masker)));
            }
        }
        foreach (var (kind, instances) in sinks.Custom)
        {
            if (!_plugins.TryGetValue(kind, out var factory)) continue;
            foreach (var (name, c) in instances)
                Add($"sinks.custom.{kind}.{name}", kind, name, () => factory(new CustomSinkContext(kind, name, c.Settings, config, loggers)));
        }

        if (problems.Count > 0)
            throw new SinkConfigurationException($"The sinks configuration has {problems.Count} problem(s):\n  " + string.Join("\n  ", problems));
        return built;
    }

    /// <summary>
    /// Configured sinks this worker has no implementation for: a plugin kind not registered, or a kind whose package
    /// is not referenced. Checked at start and by <c>check-config</c>.
    /// </summary>
    internal IEnumerable<string> RegistrationProblems(DrakkarConfig config)
    {
        foreach (var kind in config.Sinks.Custom.Keys.Where(kind => !_plugins.ContainsKey(kind)))
        {
            yield return $"sinks.custom.{kind}: unknown plugin sink kind '{kind}'. Known plugin kinds: " +
                (_plugins.Count == 0 ? "none registered" : string.Join(", ", PluginKinds)) +
                ". Register the plugin's kind with SinkRegistry.Register before the worker starts.";
        }
        foreach (var descriptor in SinkKinds.BuiltIn)
        {
            if (descriptor.Factory is not null || _provided.ContainsKey(descriptor.Kind)) continue;
            foreach (var (name, _) in descriptor.Instances(config.Sinks))
            {
                var (package, registration) = descriptor.Package!.Value;
                yield return $"{descriptor.ConfigPath(name)}: the {descriptor.Name} sink ships in its own package; reference {package} and register it " +
                    $"(DrakkarAppOptions.Sinks = {registration}).";
            }
        }
    }

    /// <summary>
    /// Sinks the handler declares that the configuration cannot serve: not configured, or not Kafka under
    /// <c>kafka.exactly_once</c>. Checked at start and by <c>check-config</c>.
    /// </summary>
    internal static IEnumerable<string> DeclarationProblems(DrakkarConfig config, IReadOnlyList<SinkDeclaration> declared)
    {
        foreach (var declaration in declared.Where(d => !IsConfigured(config.Sinks, d)))
        {
            var misspelt = Configuration.KeySuggester.Closest(declaration.Name, UndeclaredInstances(config.Sinks, declared, declaration.Kind, declaration.CustomKind));
            yield return $"{declaration.ConfigPath}: the handler declares this sink but it is not configured; add it under {declaration.ConfigPath} or remove the [Sink] declaration." +
                (misspelt is null ? "" : $" The configuration has '{misspelt}' of this kind instead, which the handler does not declare: a misspelling?");
        }
        // Configured sinks were checked at load; a declared one the configuration lacks is named here too, so the
        // user does not add it only to be told that exactly_once refuses it.
        if (config.Kafka.ExactlyOnce)
        {
            foreach (var declaration in declared.Where(d => d.Kind != SinkKind.Kafka))
                yield return $"{declaration.ConfigPath}: the handler declares this sink, but kafka.exactly_once allows only Kafka sinks; " +
                    "remove the [Sink] declaration or set kafka.exactly_once: false.";
        }
    }

    /// <summary>
    /// Configured sinks the handler does not declare, when it declares any: a misspelt instance name beside the right
    /// one is connected at start and makes a payload that names no instance ambiguous. Warnings, not errors: such an
    /// instance may be meant for later.
    /// </summary>
    internal static IEnumerable<string> UndeclaredWarnings(DrakkarConfig config, IReadOnlyList<SinkDeclaration> declared)
    {
        if (declared.Count == 0) yield break;
        foreach (var (kind, customKind) in KindsOf(config.Sinks))
        {
            var declaredNames = declared.Where(d => d.Kind == kind && d.CustomKind == customKind).Select(d => d.Name).ToList();
            foreach (var name in UndeclaredInstances(config.Sinks, declared, kind, customKind))
            {
                var closest = Configuration.KeySuggester.Closest(name, declaredNames);
                yield return $"{SinkKey.ConfigPathOf(kind, customKind, name)} is configured but the handler declares no such sink " +
                    (declaredNames.Count == 0 ? "of this kind" : $"(it declares {string.Join(", ", declaredNames.Select(n => $"'{n}'"))})") +
                    (closest is null ? "." : $"; did you mean '{closest}'?") + " It is connected at start all the same.";
            }
        }
    }

    private static IEnumerable<(SinkKind Kind, string? CustomKind)> KindsOf(SinksConfig sinks) =>
    [
        .. SinkKinds.BuiltIn.Where(d => d.Instances(sinks).Any()).Select(d => (d.Kind, (string?)null)),
        .. sinks.Custom.Keys.Select(kind => (SinkKind.Custom, (string?)kind)),
    ];

    /// <summary>The names of the configured instances of one kind that no declaration names.</summary>
    private static IEnumerable<string> UndeclaredInstances(SinksConfig sinks, IReadOnlyList<SinkDeclaration> declared, SinkKind kind, string? customKind)
    {
        var names = kind == SinkKind.Custom
            ? customKind is not null && sinks.Custom.TryGetValue(customKind, out var instances) ? instances.Keys : []
            : SinkKinds.Of(kind).Instances(sinks).Select(i => i.Key);
        return names.Where(name => !declared.Any(d => d.Kind == kind && d.CustomKind == customKind && d.Name == name));
    }

    private static bool IsConfigured(SinksConfig sinks, SinkDeclaration declaration) => declaration.Kind == SinkKind.Custom
        ? declaration.CustomKind is { } kind && sinks.Custom.TryGetValue(kind, out var instances) && instances.ContainsKey(declaration.Name)
        : SinkKinds.Of(declaration.Kind).Instance(sinks, declaration.Name) is not null;

    /// <summary>
    /// Each instance's <c>batch_size</c>, <c>linger_ms</c>, <c>on_outage</c> and <c>attempt_timeout_seconds</c>, with its
    /// kind's deliveries in flight (one at a time for a plugin kind, whose sink may not expect concurrent calls).
    /// </summary>
    internal static Func<string, string, SinkBatching> Batching(SinksConfig sinks) => (kind, name) =>
    {
        var (config, inFlight) = SinkKinds.Named(kind) is { } descriptor
            ? (descriptor.Instance(sinks, name), descriptor.DeliveriesInFlight)
            : ((SinkInstanceConfig?)sinks.Custom.GetValueOrDefault(kind)?.GetValueOrDefault(name), SinkBatching.Default.Concurrency);
        config ??= new CustomSinkConfig();
        return new SinkBatching(config.BatchSize, TimeSpan.FromMilliseconds(config.LingerMs), inFlight, config.OnOutage)
        {
            AttemptTimeout = TimeSpan.FromSeconds(config.AttemptTimeoutSeconds),
        };
    };
}
