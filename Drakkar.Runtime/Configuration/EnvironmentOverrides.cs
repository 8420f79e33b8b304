namespace Drakkar.Configuration;

/// <summary>
/// Merges <c>DK_SECTION__KEY[__…]</c> variables into the tree, on top of the file. Names are matched without regard
/// to case; each <c>__</c> goes one level deeper, so <c>DK_SINKS__KAFKA__RESULTS__TOPIC</c> creates or overrides the
/// <c>results</c> Kafka sink's topic. Values stay strings here; the binder converts them and names the variable on error.
/// </summary>
internal static class EnvironmentOverrides
{
    public const string Prefix = "DK_";

    /// <summary>Names with the prefix that are not configuration keys.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.OrdinalIgnoreCase) { ConfigLoader.ConfigPathVariable };

    public static void Apply(MapNode root, IReadOnlyDictionary<string, string?> environment, List<ConfigProblem> problems)
    {
        // Sorted so that overlapping overrides (DK_A__B and DK_A__B__C) resolve the same way on every machine.
        var names = environment
            .Where(pair => pair.Value is not null
                           && pair.Key.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)
                           && !Reserved.Contains(pair.Key))
            .Select(pair => pair.Key)
            .Order(StringComparer.Ordinal);

        foreach (var name in names)
        {
            var segments = name[Prefix.Length..].Split("__");
            if (Array.Exists(segments, segment => segment.Length == 0))
            {
                problems.Add(new ConfigProblem(
                    "", $"'{name}' is not a valid override: each '__' must separate two key names", $"env {name}"));
                continue;
            }
            Set(root, segments, environment[name]!, name);
        }
    }

    private static void Set(MapNode root, string[] segments, string value, string variable)
    {
        var map = root;
        for (var depth = 0; depth < segments.Length - 1; depth++)
        {
            var entry = map.FindForOverride(segments[depth]);
            if (entry is null)
            {
                var child = new MapNode { EnvVar = variable };
                map.Entries.Add(new MapEntry(segments[depth], child, keyFromEnvironment: true));
                map = child;
            }
            else if (entry.Value is MapNode existing)
            {
                map = existing;
            }
            else
            {
                // The file had a scalar or list where the variable reaches deeper: the environment wins.
                var child = new MapNode { EnvVar = variable };
                entry.Value = child;
                map = child;
            }
        }

        var leaf = new ScalarNode(value) { EnvVar = variable };
        var last = map.FindForOverride(segments[^1]);
        if (last is null)
            map.Entries.Add(new MapEntry(segments[^1], leaf, keyFromEnvironment: true));
        else
            last.Value = leaf;
    }
}
