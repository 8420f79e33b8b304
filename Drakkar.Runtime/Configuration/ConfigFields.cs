namespace Drakkar.Configuration;

// Table-driven binding: each configuration class is described once as a list of fields (key, getter, setter, type,
// rules, docs). The same table binds the tree, reports unknown keys with suggestions, writes the effective YAML and
// renders the key tables of docs/configuration.md (ConfigDocs), so they can never disagree about a key. Plain
// delegates keep it free of reflection for Native AOT.

/// <summary>One row of a key table in docs/configuration.md; <see cref="Path"/> is the key's dotted path from the spec described.</summary>
internal sealed record ConfigKeyDoc(string Path, string Type, string Default, string Allowed, string Meaning);

/// <summary>One key of a configuration object.</summary>
internal abstract class ConfigField<T>
    where T : class
{
    protected ConfigField(string key) => Key = key;

    /// <summary>The snake_case key, as in Drakkar.</summary>
    public string Key { get; }

    /// <summary>What the key does: the "meaning" column of docs/configuration.md.</summary>
    public string Doc { get; init; } = "";

    /// <summary>
    /// What is allowed beyond the field's own rules, for the docs' "allowed" column: a rule enforced by the object's
    /// cross-key check or at start-up ("required", "≤ `pool_max`").
    /// </summary>
    public string? AllowedNote { get; init; }

    /// <summary>The docs rows of this key (several for a section), with defaults read from <paramref name="defaults"/>.</summary>
    public abstract IEnumerable<ConfigKeyDoc> Describe(T defaults);

    /// <summary>A leaf key's row: the note follows the allowed values the field itself checks.</summary>
    protected ConfigKeyDoc Row(string type, string shownDefault, params string?[] allowed) =>
        new(Key, type, shownDefault, string.Join("; ", allowed.Append(AllowedNote).Where(text => !string.IsNullOrEmpty(text))), Doc);

    public abstract void Bind(T target, ConfigNode node, string path, BindContext context);

    public abstract void Write(T source, ConfigYamlWriter writer);

    /// <summary>False for a key that is only recognised to be refused: the effective YAML leaves it out.</summary>
    public virtual bool Written => true;
}

/// <summary>A configuration object: its fields plus rules that span several of them (run after the fields bind).</summary>
internal sealed class ObjectSpec<T>
    where T : class
{
    private readonly ConfigField<T>[] _fields;
    private readonly Action<T, ObjectCheck>? _validate;

    public ObjectSpec(ConfigField<T>[] fields, Action<T, ObjectCheck>? validate = null)
    {
        _fields = fields;
        _validate = validate;
    }

    /// <summary>The keys this object accepts.</summary>
    public IEnumerable<string> Keys => _fields.Select(f => f.Key);

    /// <summary>
    /// Binds <paramref name="node"/>'s keys; a key this object does not know is reported, or handed to
    /// <paramref name="other"/> when given (an object whose remaining keys belong to someone else).
    /// </summary>
    public void Bind(T target, ConfigNode node, string path, BindContext context, Action<MapEntry>? other = null)
    {
        // A section written with nothing under it (all keys commented out) keeps its defaults.
        if (node is ScalarNode { IsNull: true })
        {
            _validate?.Invoke(target, new ObjectCheck(path, node, null, context));
            return;
        }
        if (context.AsMap(node, path) is not { } map) return;

        foreach (var entry in map.Entries)
        {
            var field = Find(entry);
            if (field is null && other is not null)
            {
                other(entry);
                continue;
            }
            if (field is null)
            {
                var key = entry.KeyFromOverride ? entry.Key.ToLowerInvariant() : entry.Key;
                var known = _fields.Where(f => f.Written).Select(f => f.Key);
                // At the root an application's declared sections are known too, and an undeclared one may be meant as one.
                if (path.Length == 0) known = known.Concat(context.ApplicationSections);
                var message = UnknownKey(key, known);
                if (path.Length == 0 && KeySuggester.Closest(key, known) is null) message += RootHint;
                context.Report(BindContext.Join(path, key), message, entry.Value);
                continue;
            }
            field.Bind(target, entry.Value, BindContext.Join(path, field.Key), context);
        }
        _validate?.Invoke(target, new ObjectCheck(path, node, map, context));
    }

    public void Write(T source, ConfigYamlWriter writer)
    {
        writer.BeginMap();
        WriteEntries(source, writer);
        writer.EndMap();
    }

    /// <summary>This object's keys and values, inside a map the caller opened.</summary>
    public void WriteEntries(T source, ConfigYamlWriter writer)
    {
        foreach (var field in _fields)
        {
            if (!field.Written) continue;
            writer.Key(field.Key);
            field.Write(source, writer);
        }
    }

    private ConfigField<T>? Find(MapEntry entry)
    {
        var comparison = entry.KeyFromOverride ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return Array.Find(_fields, field => string.Equals(field.Key, entry.Key, comparison));
    }

    public IEnumerable<ConfigKeyDoc> Describe(T defaults) => _fields.SelectMany(field => field.Describe(defaults));

    private const string RootHint = "; a section of the application's own is accepted once declared in DrakkarAppOptions.ApplicationSections";

    public static string UnknownKey(string key, IEnumerable<string> known)
    {
        var suggestion = KeySuggester.Closest(key, known);
        return suggestion is null
            ? $"unknown key (known keys: {string.Join(", ", known)})"
            : $"unknown key; did you mean '{suggestion}'?";
    }
}

/// <summary>What an object-level rule needs to report against the right key path and source line.</summary>
internal readonly struct ObjectCheck
{
    private readonly ConfigNode _node;
    private readonly MapNode? _map;
    private readonly BindContext _context;

    public ObjectCheck(string path, ConfigNode node, MapNode? map, BindContext context)
    {
        Path = path;
        _node = node;
        _map = map;
        _context = context;
    }

    public string Path { get; }

    /// <summary>
    /// Reports a problem with <paramref name="key"/>, pointing at its value when it was given. A key whose value was
    /// already refused keeps only that first problem: its model value is still the default, so object rules about it
    /// ("is required") would only repeat the mistake in other words.
    /// </summary>
    public void Fail(string key, string message)
    {
        var path = BindContext.Join(Path, key);
        if (_context.Problems.Exists(problem => problem.Path == path)) return;
        _context.Report(path, message, Locate(key));
    }

    /// <summary>
    /// The node a key's problem points at: its value when given, following a dotted key (<c>cache.db_dir</c>, from a
    /// rule that spans sections) down to the deepest part that was given, so the problem names the line or variable
    /// that set it rather than the file's first line.
    /// </summary>
    private ConfigNode Locate(string key)
    {
        var found = _node;
        var map = _map;
        foreach (var part in key.Split('.'))
        {
            if (map?.Entries.Find(e => string.Equals(e.Key, part, StringComparison.OrdinalIgnoreCase)) is not { } entry) break;
            found = entry.Value;
            map = entry.Value as MapNode;
        }
        return found;
    }

    /// <summary>True when the key was given at all (in the file or the environment).</summary>
    public bool Has(string key) =>
        _map?.Entries.Exists(e => string.Equals(e.Key, key, StringComparison.OrdinalIgnoreCase)) ?? false;
}

internal sealed class ScalarField<T, TValue> : ConfigField<T>
    where T : class
{
    private readonly Func<T, TValue> _get;
    private readonly Action<T, TValue> _set;
    private readonly ScalarType<TValue> _type;
    private readonly ConfigRule<TValue>[] _rules;

    public ScalarField(string key, Func<T, TValue> get, Action<T, TValue> set, ScalarType<TValue> type, params ConfigRule<TValue>[] rules)
        : base(key)
    {
        _get = get;
        _set = set;
        _type = type;
        _rules = rules;
    }

    /// <summary>The whole value is a secret: the effective YAML shows only <c>***</c>.</summary>
    public bool FullyMasked { get; init; }

    /// <summary>Canonicalizes a value that passed the rules (e.g. trims a token) before it is stored.</summary>
    public Func<TValue, TValue>? Normalize { get; init; }

    public override void Bind(T target, ConfigNode node, string path, BindContext context)
    {
        if (node is not ScalarNode scalar)
        {
            context.Report(path, $"must be {_type.Expected}, got {node.Describe()}", node);
            return;
        }
        if (scalar.Failed) return;
        if (scalar.IsNull && !_type.AllowsNull)
        {
            context.Report(path, $"must be {_type.Expected}, got null", node);
            return;
        }
        // An override's text is never YAML null by itself; its null spellings clear a key that accepts null.
        var text = _type.AllowsNull && scalar.Override is not null && scalar.SpellsNull ? null : scalar.Value;
        if (!_type.TryParse(text, out var value))
        {
            context.Report(path, $"must be {_type.Expected} (got {scalar.Describe()})", node);
            return;
        }
        foreach (var rule in _rules)
        {
            if (rule.Check(value) is { } message)
            {
                context.Report(path, message, node);
                return;
            }
        }
        _set(target, Normalize is null ? value : Normalize(value));
    }

    public override void Write(T source, ConfigYamlWriter writer) => _type.Write(writer, _get(source), FullyMasked);

    public override IEnumerable<ConfigKeyDoc> Describe(T defaults) =>
        [Row(_type.DocName, _type.Show(_get(defaults)), [_type.DocValues, .. _rules.Select(rule => rule.Text)])];
}

/// <summary>
/// A Drakkar key this runtime does not support (C5): given at all, it is an error that names it and says why, rather
/// than an unknown key with a suggestion or a value silently ignored.
/// </summary>
internal sealed class UnsupportedField<T>(string key, string reason) : ConfigField<T>(key)
    where T : class
{
    public override bool Written => false;

    public override void Bind(T target, ConfigNode node, string path, BindContext context) =>
        context.Report(path, $"is not supported by Drakkar for .NET: {reason}; remove it", node);

    /// <summary>Not a row of the generated key tables: docs/configuration.md lists refused keys in prose.</summary>
    public override IEnumerable<ConfigKeyDoc> Describe(T defaults) => [];

    public override void Write(T source, ConfigYamlWriter writer)
    {
    }
}

internal sealed class StringListField<T> : ConfigField<T>
    where T : class
{
    private readonly Func<T, List<string>> _get;
    private readonly Action<T, List<string>> _set;

    public StringListField(string key, Func<T, List<string>> get, Action<T, List<string>> set)
        : base(key)
    {
        _get = get;
        _set = set;
    }

    /// <summary>A rule every item must pass, reported at the item; null: any string.</summary>
    public ConfigRule<string>? EachItem { get; init; }

    public override void Bind(T target, ConfigNode node, string path, BindContext context)
    {
        if (context.AsList(node, path) is not { } items) return;
        var values = new List<string>(items.Count);
        var valid = true;
        for (var i = 0; i < items.Count; i++)
        {
            if (items[i] is ScalarNode { IsNull: false } scalar)
            {
                valid &= !scalar.Failed;
                values.Add(scalar.Value!);
                if (!scalar.Failed && EachItem?.Check(scalar.Value!) is { } problem)
                {
                    context.Report($"{path}[{i}]", problem, items[i]);
                    valid = false;
                }
                continue;
            }
            context.Report($"{path}[{i}]", $"must be a string, got {items[i].Describe()}", items[i]);
            valid = false;
        }
        if (valid) _set(target, values);
    }

    public override void Write(T source, ConfigYamlWriter writer)
    {
        var values = _get(source);
        writer.BeginList(values.Count == 0);
        foreach (var value in values) writer.String(value);
        writer.EndList();
    }

    public override IEnumerable<ConfigKeyDoc> Describe(T defaults) =>
        [Row("list", $"`[{string.Join(", ", _get(defaults))}]`", EachItem is null ? null : $"each {EachItem.Text}")];
}

/// <summary>A free-form string map (<c>executor.env</c>, HTTP <c>headers</c>); values named like secrets are masked.</summary>
internal sealed class StringMapField<T> : ConfigField<T>
    where T : class
{
    private readonly Func<T, Dictionary<string, string>> _get;

    public StringMapField(string key, Func<T, Dictionary<string, string>> get)
        : base(key) => _get = get;

    public override void Bind(T target, ConfigNode node, string path, BindContext context)
    {
        if (node is ScalarNode { IsNull: true }) return;
        if (context.AsMap(node, path) is not { } map) return;
        // Filled in place so the model's comparer (case-insensitive for HTTP headers) is kept.
        var values = _get(target);
        values.Clear();
        BindStringMap(map, path, values, context);
    }

    internal static void BindStringMap(MapNode map, string path, Dictionary<string, string> into, BindContext context)
    {
        foreach (var entry in map.Entries)
        {
            // Keys here are data (variable or header names), so an environment override keeps the case it was given.
            var entryPath = BindContext.Join(path, entry.Key);
            if (entry.Value is ScalarNode { IsNull: false } scalar)
            {
                if (!scalar.Failed) into[entry.Key] = scalar.Value!;
                continue;
            }
            context.Report(entryPath, $"must be a string, got {entry.Value.Describe()}", entry.Value);
        }
    }

    public override void Write(T source, ConfigYamlWriter writer) => writer.StringMap(_get(source));

    public override IEnumerable<ConfigKeyDoc> Describe(T defaults) => [Row("map", $"`{Show(_get(defaults))}`")];

    /// <summary>A map as the docs show a default, in YAML flow style: <c>{}</c>, <c>{name: x}</c>.</summary>
    internal static string Show(Dictionary<string, string> map) =>
        $"{{{string.Join(", ", map.Select(pair => $"{pair.Key}: {pair.Value}"))}}}";
}

/// <summary>A list of small string maps (<c>debug.custom_links</c>).</summary>
internal sealed class StringMapListField<T> : ConfigField<T>
    where T : class
{
    private readonly Func<T, List<Dictionary<string, string>>> _get;
    private readonly Action<T, List<Dictionary<string, string>>> _set;

    public StringMapListField(
        string key, Func<T, List<Dictionary<string, string>>> get, Action<T, List<Dictionary<string, string>>> set)
        : base(key)
    {
        _get = get;
        _set = set;
    }

    /// <summary>The keys every entry has, and the only ones it may have; empty: any keys.</summary>
    public string[] EntryKeys { get; init; } = [];

    /// <summary>Checks an entry's value by its key; a problem is reported at that value.</summary>
    public Func<string, string, string?>? CheckValue { get; init; }

    public override void Bind(T target, ConfigNode node, string path, BindContext context)
    {
        if (context.AsList(node, path) is not { } items) return;
        var values = new List<Dictionary<string, string>>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            var itemPath = $"{path}[{i}]";
            if (context.AsMap(items[i], itemPath) is not { } map) continue;
            var entry = new Dictionary<string, string>(StringComparer.Ordinal);
            StringMapField<T>.BindStringMap(map, itemPath, entry, context);
            values.Add(entry);
            if (EntryKeys.Length == 0) continue;
            // Each entry has exactly these keys: a typo would otherwise drop the entry without a word.
            foreach (var item in map.Entries)
            {
                var entryPath = BindContext.Join(itemPath, item.Key);
                if (!EntryKeys.Contains(item.Key, StringComparer.Ordinal))
                    context.Report(entryPath, ObjectSpec<T>.UnknownKey(item.Key, EntryKeys), item.Value);
                else if (entry.TryGetValue(item.Key, out var value) && CheckValue?.Invoke(item.Key, value) is { } problem)
                    context.Report(entryPath, problem, item.Value);
            }
            foreach (var key in EntryKeys.Where(key => !entry.TryGetValue(key, out var value) || value.Trim().Length == 0))
                context.Report(BindContext.Join(itemPath, key), "is required (each entry has " + string.Join(" and ", EntryKeys) + ")", items[i]);
        }
        _set(target, values);
    }

    public override void Write(T source, ConfigYamlWriter writer)
    {
        var values = _get(source);
        writer.BeginList(values.Count == 0);
        foreach (var map in values) writer.StringMap(map);
        writer.EndList();
    }

    public override IEnumerable<ConfigKeyDoc> Describe(T defaults) =>
        [Row("list of maps", $"`[{string.Join(", ", _get(defaults).Select(StringMapField<T>.Show))}]`")];
}

/// <summary>A nested section that always exists (<c>kafka</c>, <c>sinks.circuit_breaker</c>).</summary>
internal sealed class SectionField<T, TSection> : ConfigField<T>
    where T : class
    where TSection : class
{
    private readonly Func<T, TSection> _get;
    private readonly ObjectSpec<TSection> _spec;

    public SectionField(string key, Func<T, TSection> get, ObjectSpec<TSection> spec)
        : base(key)
    {
        _get = get;
        _spec = spec;
    }

    public override void Bind(T target, ConfigNode node, string path, BindContext context) =>
        _spec.Bind(_get(target), node, path, context);

    public override void Write(T source, ConfigYamlWriter writer) => _spec.Write(_get(source), writer);

    public override IEnumerable<ConfigKeyDoc> Describe(T defaults) =>
        _spec.Describe(_get(defaults)).Select(row => row with { Path = $"{Key}.{row.Path}" });
}

/// <summary>Named instances of one sink kind (<c>sinks.kafka.results</c>, <c>sinks.kafka.alerts</c>).</summary>
internal sealed class InstancesField<T, TInstance> : ConfigField<T>
    where T : class
    where TInstance : class
{
    private readonly Func<T, Dictionary<string, TInstance>> _get;
    private readonly Func<TInstance> _create;
    private readonly ObjectSpec<TInstance> _spec;

    public InstancesField(string key, Func<T, Dictionary<string, TInstance>> get, Func<TInstance> create, ObjectSpec<TInstance> spec)
        : base(key)
    {
        _get = get;
        _create = create;
        _spec = spec;
    }

    public override void Bind(T target, ConfigNode node, string path, BindContext context)
    {
        if (node is ScalarNode { IsNull: true }) return;
        if (context.AsMap(node, path) is not { } map) return;
        var instances = _get(target);
        foreach (var entry in map.Entries)
        {
            var name = InstanceName(entry);
            var instancePath = BindContext.Join(path, name);
            if (name.Trim().Length == 0)
            {
                context.Report(instancePath, "a sink instance needs a non-empty name", entry.Value);
                continue;
            }
            if (!instances.TryGetValue(name, out var instance))
            {
                instance = _create();
                instances[name] = instance;
            }
            _spec.Bind(instance, entry.Value, instancePath, context);
        }
    }

    /// <summary>The keys of one instance, under <c>{key}.&lt;name&gt;</c>, with the defaults of a new instance.</summary>
    public override IEnumerable<ConfigKeyDoc> Describe(T defaults) =>
        _spec.Describe(_create()).Select(row => row with { Path = $"{Key}.<name>.{row.Path}" });

    /// <summary>Drakkar lower-cases names that arrive through environment variables; file names are kept as written.</summary>
    internal static string InstanceName(MapEntry entry) => entry.KeyFromOverride ? entry.Key.ToLowerInvariant() : entry.Key;

    public override void Write(T source, ConfigYamlWriter writer)
    {
        var instances = _get(source);
        writer.BeginMap(instances.Count == 0);
        foreach (var (name, instance) in instances.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            writer.Key(name);
            _spec.Write(instance, writer);
        }
        writer.EndMap();
    }
}

/// <summary>
/// <c>sinks.custom.{kind}.{instance}</c>: the delivery keys every sink instance has (<c>batch_size</c>,
/// <c>linger_ms</c>, <c>on_outage</c>, <c>attempt_timeout_seconds</c>, <c>ui_url</c>) are bound and checked like a
/// built-in instance's; every other key is the plugin's own and opaque here, so its scalars are kept as strings and
/// nested mappings or lists are flattened with '.' (<c>auth.user</c>, <c>hosts.0</c>). The plugin validates them.
/// </summary>
internal sealed class CustomSinksField<T> : ConfigField<T>
    where T : class
{
    private readonly Func<T, Dictionary<string, Dictionary<string, CustomSinkConfig>>> _get;
    private readonly ObjectSpec<CustomSinkConfig> _delivery;

    public CustomSinksField(string key, Func<T, Dictionary<string, Dictionary<string, CustomSinkConfig>>> get, ObjectSpec<CustomSinkConfig> delivery)
        : base(key)
    {
        _get = get;
        _delivery = delivery;
    }

    public override void Bind(T target, ConfigNode node, string path, BindContext context)
    {
        if (node is ScalarNode { IsNull: true }) return;
        if (context.AsMap(node, path) is not { } kinds) return;
        var all = _get(target);
        foreach (var kindEntry in kinds.Entries)
        {
            var kind = InstancesField<T, CustomSinkConfig>.InstanceName(kindEntry);
            var kindPath = BindContext.Join(path, kind);
            if (kindEntry.Value is ScalarNode { IsNull: true }) continue;
            if (context.AsMap(kindEntry.Value, kindPath) is not { } instances) continue;
            if (!all.TryGetValue(kind, out var byName))
            {
                byName = new Dictionary<string, CustomSinkConfig>(StringComparer.Ordinal);
                all[kind] = byName;
            }
            foreach (var instanceEntry in instances.Entries)
            {
                var name = InstancesField<T, CustomSinkConfig>.InstanceName(instanceEntry);
                var instancePath = BindContext.Join(kindPath, name);
                if (!byName.TryGetValue(name, out var instance))
                {
                    instance = new CustomSinkConfig();
                    byName[name] = instance;
                }
                if (instanceEntry.Value is ScalarNode { IsNull: true }) continue;
                _delivery.Bind(instance, instanceEntry.Value, instancePath, context, setting =>
                {
                    // Setting names from the environment are lower-cased like every other key Drakkar reads there.
                    var key = setting.KeyFromOverride ? setting.Key.ToLowerInvariant() : setting.Key;
                    Flatten(setting.Value, key, BindContext.Join(instancePath, key), instance.Settings, context);
                });
            }
        }
    }

    /// <summary>The delivery keys, under <c>{key}.&lt;kind&gt;.&lt;name&gt;</c>; the plugin's own keys are described in prose.</summary>
    public override IEnumerable<ConfigKeyDoc> Describe(T defaults) =>
        _delivery.Describe(new CustomSinkConfig()).Select(row => row with { Path = $"{Key}.<kind>.<name>.{row.Path}" });

    private static void Flatten(ConfigNode node, string prefix, string path, Dictionary<string, string> into, BindContext context)
    {
        switch (node)
        {
            case MapNode map:
                foreach (var entry in map.Entries)
                {
                    // Setting names from the environment are lower-cased like every other key Drakkar reads there.
                    var key = entry.KeyFromOverride ? entry.Key.ToLowerInvariant() : entry.Key;
                    Flatten(entry.Value, prefix.Length == 0 ? key : $"{prefix}.{key}", BindContext.Join(path, key), into, context);
                }
                break;
            case SequenceNode sequence:
                for (var i = 0; i < sequence.Items.Count; i++)
                    Flatten(sequence.Items[i], $"{prefix}.{i}", $"{path}[{i}]", into, context);
                break;
            case ScalarNode scalar when !scalar.Failed:
                into[prefix] = scalar.Value ?? "";
                break;
        }
    }

    public override void Write(T source, ConfigYamlWriter writer)
    {
        var all = _get(source);
        writer.BeginMap(all.Count == 0);
        foreach (var (kind, byName) in all.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            writer.Key(kind);
            writer.BeginMap(byName.Count == 0);
            foreach (var (name, instance) in byName.OrderBy(pair => pair.Key, StringComparer.Ordinal))
            {
                writer.Key(name);
                writer.BeginMap();
                _delivery.WriteEntries(instance, writer);
                writer.StringEntries(instance.Settings);
                writer.EndMap();
            }
            writer.EndMap();
        }
        writer.EndMap();
    }
}
