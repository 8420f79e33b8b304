namespace Drakkar.Configuration;

/// <summary>Collects problems while binding, so one pass reports every mistake instead of stopping at the first.</summary>
internal sealed class BindContext
{
    public BindContext(List<ConfigProblem> problems, IReadOnlyCollection<string>? applicationSections = null)
    {
        Problems = problems;
        ApplicationSections = applicationSections ?? [];
    }

    /// <summary>The application's own top-level sections (known keys beside Drakkar's at the root, for suggestions).</summary>
    public IReadOnlyCollection<string> ApplicationSections { get; }

    public List<ConfigProblem> Problems { get; }

    public void Report(string path, string message, ConfigNode? node) =>
        Problems.Add(new ConfigProblem(path, message, node?.Source));

    public static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    /// <summary>
    /// The node as a mapping. A variable such as <c>DK_SINKS__HTTP__HOOK__HEADERS='{"X-Team": "a"}'</c> may give a
    /// whole mapping inline (YAML flow or JSON); anything else that is not a mapping is reported.
    /// </summary>
    public MapNode? AsMap(ConfigNode node, string path)
    {
        if (node is MapNode map) return map;
        if (node is ScalarNode { Override: not null, Value: { } text } scalar && text.TrimStart().StartsWith('{'))
            return ParseInline(text, scalar, path) as MapNode;
        if (node is ScalarNode { Failed: true }) return null;
        Report(path, $"must be a mapping of keys, got {node.Describe()}", node);
        return null;
    }

    /// <summary>
    /// The node as a list. From the environment a list is either inline (<c>["a","b"]</c>) or comma-separated
    /// (<c>DK_EXECUTOR__ENV_INHERIT_DENY=DK_*,*TOKEN*</c>), because a variable cannot hold a YAML block.
    /// </summary>
    public List<ConfigNode>? AsList(ConfigNode node, string path)
    {
        if (node is SequenceNode sequence) return sequence.Items;
        if (node is ScalarNode { Override: not null, Value: { } text } scalar)
        {
            if (text.TrimStart().StartsWith('['))
                return (ParseInline(text, scalar, path) as SequenceNode)?.Items;
            return text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(ConfigNode (item) => new ScalarNode(item) { Override = scalar.Override })
                .ToList();
        }
        if (node is ScalarNode { Failed: true }) return null;
        Report(path, $"must be a list, got {node.Describe()}", node);
        return null;
    }

    private ConfigNode? ParseInline(string text, ScalarNode scalar, string path)
    {
        var node = YamlTreeReader.ReadInline(text, scalar.Override!, out var error);
        if (node is null) Report(path, $"is not a valid inline mapping or list: {error}", scalar);
        return node;
    }
}
