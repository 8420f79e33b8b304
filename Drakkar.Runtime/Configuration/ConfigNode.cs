namespace Drakkar.Configuration;

// The configuration as an untyped tree: the YAML file first, then the overrides (appsettings.json, DK_ variables,
// the command line) merged in. Binding walks it against
// the schema, so a value keeps where it came from (file line or environment variable) for error messages.

internal abstract class ConfigNode
{
    /// <summary>1-based line in the file; 0 when the node did not come from the file.</summary>
    public int Line { get; init; }

    /// <summary>
    /// Where an override of the file set this node (<c>env DK_KAFKA__BROKERS</c>, <c>appsettings.json</c>,
    /// <c>command line --kafka:brokers</c>); null for the file itself.
    /// </summary>
    public string? Override { get; init; }

    public string? Source => Override ?? (Line > 0 ? $"line {Line}" : null);

    public abstract string Describe();
}

internal sealed class ScalarNode : ConfigNode
{
    public ScalarNode(string? value) => Value = value;

    /// <summary>The text after <c>${VAR}</c> expansion; null for YAML null (<c>~</c>, <c>null</c>, nothing).</summary>
    public string? Value { get; }

    /// <summary>Expansion already failed and was reported; binding skips the value rather than report it twice.</summary>
    public bool Failed { get; init; }

    public bool IsNull => Value is null;

    /// <summary>
    /// The value is written as YAML writes null (<c>~</c>, <c>null</c>, <c>Null</c>, <c>NULL</c>): what an override
    /// (environment variable, command line) gives to clear a key that accepts null, as <c>key: null</c> does in the file.
    /// </summary>
    public bool SpellsNull => IsNullSpelling(Value?.Trim());

    public static bool IsNullSpelling(string? text) => text is "~" or "null" or "Null" or "NULL";

    /// <summary>The value for an error message, credentials masked: a DSN given where a mapping belongs must not leak.</summary>
    public override string Describe() => Value is null ? "null" : $"'{SecretMasker.Mask(Value)}'";
}

internal sealed class MapEntry
{
    public MapEntry(string key, ConfigNode value, bool keyFromOverride)
    {
        Key = key;
        Value = value;
        KeyFromOverride = keyFromOverride;
    }

    public string Key { get; }

    public ConfigNode Value { get; set; }

    /// <summary>The key came from an override (a variable name, JSON, the command line), so it matches schema keys case-insensitively.</summary>
    public bool KeyFromOverride { get; }
}

internal sealed class MapNode : ConfigNode
{
    public List<MapEntry> Entries { get; } = [];

    /// <summary>Exact match first, then a case-insensitive one (environment variable names are usually upper case).</summary>
    public MapEntry? FindForOverride(string key)
    {
        foreach (var entry in Entries)
            if (string.Equals(entry.Key, key, StringComparison.Ordinal)) return entry;
        foreach (var entry in Entries)
            if (string.Equals(entry.Key, key, StringComparison.OrdinalIgnoreCase)) return entry;
        return null;
    }

    public override string Describe() => "a mapping";
}

internal sealed class SequenceNode : ConfigNode
{
    public List<ConfigNode> Items { get; } = [];

    public override string Describe() => "a list";
}
