using System.Text;
using System.Text.RegularExpressions;

namespace Drakkar.Configuration;

/// <summary>
/// Renders the key tables of docs/configuration.md from <see cref="DrakkarConfigSchema"/>. The page keeps its prose;
/// each table sits between <c>&lt;!-- generated from DrakkarConfigSchema: ID --&gt;</c> and
/// <c>&lt;!-- end generated --&gt;</c>, where ID is a key path (<c>kafka</c>, <c>sinks.http.&lt;name&gt;</c>),
/// <c>root</c> for the top-level keys, or a path with <c>&lt;kind&gt;</c> for the keys every sink kind shares.
/// A key is listed in the table with the longest ID that prefixes its path, so every key appears exactly once.
/// </summary>
internal static class ConfigDocs
{
    public const string BeginMarker = "<!-- generated from DrakkarConfigSchema: ";
    public const string EndMarker = "<!-- end generated -->";
    public const string RootTable = "root";
    private const string KindWildcard = "<kind>";

    /// <summary>Every key of the schema, with the defaults of a fresh <see cref="DrakkarConfig"/>.</summary>
    public static IReadOnlyList<ConfigKeyDoc> Keys() => [.. DrakkarConfigSchema.Root.Describe(new DrakkarConfig())];

    /// <summary>The table IDs of the generated blocks in <paramref name="markdown"/>, in page order.</summary>
    public static IReadOnlyList<string> TableIds(string markdown) =>
        [.. markdown.Split('\n').Select(TableId).OfType<string>()];

    /// <summary><paramref name="markdown"/> with every generated block rendered afresh from the schema.</summary>
    public static string Regenerate(string markdown)
    {
        var tables = Tables(TableIds(markdown));
        var output = new StringBuilder();
        var lines = markdown.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            output.Append(lines[i]);
            if (i < lines.Length - 1) output.Append('\n');
            if (TableId(lines[i]) is not { } id) continue;
            foreach (var line in tables[id]) output.Append(line).Append('\n');
            while (++i < lines.Length && lines[i].TrimEnd() != EndMarker)
            {
                if (TableId(lines[i]) is not null) throw new FormatException($"generated block '{id}' has no '{EndMarker}' before the next one");
            }
            if (i == lines.Length) throw new FormatException($"generated block '{id}' has no '{EndMarker}'");
            output.Append(lines[i]);
            if (i < lines.Length - 1) output.Append('\n');
        }
        return output.ToString();
    }

    private static string? TableId(string line)
    {
        var trimmed = line.TrimEnd();
        return trimmed.StartsWith(BeginMarker, StringComparison.Ordinal) && trimmed.EndsWith(" -->", StringComparison.Ordinal)
            ? trimmed[BeginMarker.Length..^4].Trim()
            : null;
    }

    /// <summary>The rendered lines of each table: every key goes to exactly one of <paramref name="ids"/>.</summary>
    private static Dictionary<string, List<string>> Tables(IReadOnlyList<string> ids)
    {
        var rows = ids.Distinct().ToDictionary(id => id, _ => new List<ConfigKeyDoc>());
        var keys = Keys();
        var shared = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in rows.Keys.Where(id => id.Contains(KindWildcard, StringComparison.Ordinal)))
        {
            foreach (var (row, paths) in SharedByEveryKind(id, keys))
            {
                rows[id].Add(row);
                shared.UnionWith(paths);
            }
        }

        foreach (var key in keys.Where(key => !shared.Contains(key.Path)))
        {
            var id = rows.Keys.Where(id => !id.Contains(KindWildcard, StringComparison.Ordinal) && key.Path.StartsWith(id + ".", StringComparison.Ordinal))
                .MaxBy(id => id.Length) ?? (rows.ContainsKey(RootTable) ? RootTable : null);
            if (id is null) throw new FormatException($"key '{key.Path}' has no generated table (a '{RootTable}' table takes every key no other table does)");
            rows[id].Add(key with { Path = id == RootTable ? key.Path : key.Path[(id.Length + 1)..] });
        }

        var empty = rows.Where(pair => pair.Value.Count == 0).Select(pair => pair.Key).ToList();
        if (empty.Count > 0) throw new FormatException($"generated table(s) {string.Join(", ", empty)} name no key of the schema");
        return rows.ToDictionary(pair => pair.Key, pair => Render(pair.Value));
    }

    /// <summary>
    /// The keys every kind has under a <c>&lt;kind&gt;</c> ID (<c>batch_size</c> of every sink kind), one row each;
    /// a default that differs by kind is shown as the most common one plus the exceptions.
    /// </summary>
    private static IEnumerable<(ConfigKeyDoc Row, IEnumerable<string> Paths)> SharedByEveryKind(string id, IReadOnlyList<ConfigKeyDoc> keys)
    {
        var pattern = KindPattern(id);
        var matches = keys.Select(key => (Key: key, Match: pattern.Match(key.Path))).Where(pair => pair.Match.Success)
            .Select(pair => (pair.Key, Kind: pair.Match.Groups[1].Value, Path: pair.Match.Groups[2].Value)).ToList();
        var kinds = matches.Select(match => match.Kind).Distinct().Count();
        foreach (var group in matches.GroupBy(match => match.Path).Where(group => group.Count() == kinds))
        {
            var defaults = group.GroupBy(match => match.Key.Default).OrderByDescending(byDefault => byDefault.Count()).ToList();
            var exceptions = defaults.Skip(1).SelectMany(byDefault => byDefault.Select(match => $"{byDefault.Key} for `{match.Kind}`")).ToList();
            var shown = exceptions.Count == 0 ? defaults[0].Key : $"{defaults[0].Key} ({string.Join(", ", exceptions)})";
            yield return (group.First().Key with { Path = group.Key, Default = shown }, group.Select(match => match.Key.Path));
        }
    }

    private static Regex KindPattern(string id) =>
        new("^" + Regex.Escape(id).Replace(Regex.Escape(KindWildcard), "([^.]+)", StringComparison.Ordinal) + @"\.(.+)$", RegexOptions.CultureInvariant);

    /// <summary>A markdown table; the meaning column is left out when no key of the table has one.</summary>
    private static List<string> Render(List<ConfigKeyDoc> rows)
    {
        var withMeaning = rows.Exists(row => row.Meaning.Length > 0);
        string Line(params string[] cells) => "|" + string.Concat(cells.Take(withMeaning ? 5 : 4).Select(cell => cell.Length == 0 ? " |" : $" {cell} |"));
        return
        [
            Line("key", "type", "default", "allowed", "meaning"),
            Line("---", "---", "---", "---", "---"),
            .. rows.Select(row => Line($"`{row.Path}`", row.Type, row.Default, row.Allowed, row.Meaning)),
        ];
    }
}
