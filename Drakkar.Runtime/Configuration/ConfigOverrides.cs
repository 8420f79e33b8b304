using Microsoft.Extensions.Configuration;

namespace Drakkar.Configuration;

/// <summary>
/// Merges the sources above the YAML file into its tree: <c>appsettings.json</c>, <c>DK_SECTION__KEY[__…]</c>
/// variables and <c>--section:key=value</c> command-line settings. Keys are matched without regard to case; each
/// <c>__</c> (or <c>:</c>) goes one level deeper, so <c>DK_SINKS__KAFKA__RESULTS__TOPIC</c> creates or overrides
/// the <c>results</c> Kafka sink's topic. A list given by an override replaces the file's list as a whole. Values
/// stay strings here; the binder converts them and names the override on error.
/// </summary>
internal static class ConfigOverrides
{
    public const string Prefix = "DK_";

    /// <summary>Names with the prefix that are not configuration keys.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.OrdinalIgnoreCase) { ConfigLoader.ConfigPathVariable };

    /// <summary>
    /// The <c>DK_</c> variables that are configuration keys, sorted so that overlapping overrides (<c>DK_A__B</c> and
    /// <c>DK_A__B__C</c>) resolve the same way on every machine.
    /// </summary>
    public static IEnumerable<(string Name, string Value)> EnvironmentOverrides(IReadOnlyDictionary<string, string?> environment) =>
        environment
            .Where(pair => pair.Value is not null
                           && pair.Key.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)
                           && !Reserved.Contains(pair.Key))
            .Select(pair => (pair.Key, pair.Value!))
            .OrderBy(pair => pair.Key, StringComparer.Ordinal);

    /// <summary>The key path a variable names (<c>DK_KAFKA__BROKERS</c> → <c>KAFKA</c>, <c>BROKERS</c>).</summary>
    public static string[] Segments(string variable) => variable[Prefix.Length..].Split("__");

    public static void ApplyEnvironment(MapNode root, IReadOnlyDictionary<string, string?> environment, List<ConfigProblem> problems)
    {
        foreach (var (name, value) in EnvironmentOverrides(environment))
        {
            var segments = Segments(name);
            if (Array.Exists(segments, segment => segment.Length == 0))
            {
                problems.Add(new ConfigProblem(
                    "", $"'{name}' is not a valid override: each '__' must separate two key names", $"env {name}"));
                continue;
            }
            var source = $"env {name}";
            Set(root, segments, new ScalarNode(value) { Override = source }, source);
        }
    }

    /// <summary>
    /// Merges what <paramref name="provider"/> holds under the top-level sections <paramref name="include"/> accepts.
    /// A key whose children are all indexes (<c>0</c>, <c>1</c>, … as JSON arrays give them) is a list.
    /// </summary>
    public static void ApplyProvider(MapNode root, IConfigurationProvider provider, string source, Func<string, string, bool> include)
    {
        foreach (var section in provider.GetChildKeys([], null).Distinct(StringComparer.OrdinalIgnoreCase))
            ApplyKey(root, provider, [section], source, include);
    }

    private static void ApplyKey(MapNode root, IConfigurationProvider provider, string[] segments, string source, Func<string, string, bool> include)
    {
        if (segments.Length == 2 && !include(segments[0], segments[1])) return;
        if (segments.Length == 1 && !include(segments[0], "")) return;
        var path = ConfigurationPath.Combine(segments);
        var children = provider.GetChildKeys([], path).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        if (children.Count == 0)
        {
            provider.TryGet(path, out var value);
            Set(root, segments, new ScalarNode(value) { Override = source }, source);
        }
        else if (IsList(children))
        {
            Set(root, segments, ReadList(provider, path, source), source);
        }
        else
        {
            foreach (var child in children) ApplyKey(root, provider, [.. segments, child], source, include);
        }
    }

    private static bool IsList(List<string> keys) =>
        keys.All(key => int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _));

    private static SequenceNode ReadList(IConfigurationProvider provider, string path, string source)
    {
        var list = new SequenceNode { Override = source };
        var indexes = provider.GetChildKeys([], path).Distinct().Select(key => int.Parse(key, System.Globalization.CultureInfo.InvariantCulture)).Order();
        foreach (var index in indexes)
        {
            var itemPath = ConfigurationPath.Combine(path, index.ToString(System.Globalization.CultureInfo.InvariantCulture));
            provider.TryGet(itemPath, out var value);
            list.Items.Add(new ScalarNode(value) { Override = source });
        }
        return list;
    }

    private static void Set(MapNode root, string[] segments, ConfigNode leaf, string source)
    {
        var map = root;
        for (var depth = 0; depth < segments.Length - 1; depth++)
        {
            var entry = map.FindForOverride(segments[depth]);
            if (entry is null)
            {
                var child = new MapNode { Override = source };
                map.Entries.Add(new MapEntry(segments[depth], child, keyFromOverride: true));
                map = child;
            }
            else if (entry.Value is MapNode existing)
            {
                map = existing;
            }
            else
            {
                // The file had a scalar or list where the override reaches deeper: the override wins.
                var child = new MapNode { Override = source };
                entry.Value = child;
                map = child;
            }
        }

        var last = map.FindForOverride(segments[^1]);
        if (last is null)
            map.Entries.Add(new MapEntry(segments[^1], leaf, keyFromOverride: true));
        else
            last.Value = leaf;
    }
}
