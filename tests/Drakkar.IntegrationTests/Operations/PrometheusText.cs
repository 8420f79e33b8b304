using System.Globalization;
using System.Text.RegularExpressions;

namespace Drakkar.IntegrationTests.Operations;

/// <summary>One sample line of a Prometheus text exposition.</summary>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>
/// A strict reader of the Prometheus text format 0.0.4, as much as a scraper relies on: every line is a comment or
/// <c>name{labels} value</c>, and every family has its HELP and TYPE lines before its first sample.
/// </summary>
public static partial class PrometheusText
{
    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>\S+)$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("""(?<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?<value>(\\.|[^"\\])*)"(,|$)""")]
    private static partial Regex LabelPair();

    [GeneratedRegex("""^# (?<kind>HELP|TYPE) (?<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?<rest>.+)$""")]
    private static partial Regex CommentLine();

    public static IReadOnlyList<PrometheusSample> Parse(string text)
    {
        var help = new HashSet<string>(StringComparer.Ordinal);
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var samples = new List<PrometheusSample>();
        var lineNumber = 0;
        foreach (var line in text.Split('\n'))
        {
            lineNumber++;
            if (line.Length == 0) continue;
            if (line.StartsWith('#'))
            {
                var comment = CommentLine().Match(line);
                Assert.True(comment.Success, $"line {lineNumber} is a malformed comment: {line}");
                if (comment.Groups["kind"].Value == "HELP") help.Add(comment.Groups["name"].Value);
                else types[comment.Groups["name"].Value] = comment.Groups["rest"].Value;
                continue;
            }
            var sample = SampleLine().Match(line);
            Assert.True(sample.Success, $"line {lineNumber} is not 'name{{labels}} value': {line}");
            var name = sample.Groups["name"].Value;
            var family = Family(name, types);
            Assert.True(help.Contains(family), $"line {lineNumber}: family {family} has no HELP before its samples");
            Assert.True(types.ContainsKey(family), $"line {lineNumber}: family {family} has no TYPE before its samples");
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            var labelText = sample.Groups["labels"].Value;
            if (labelText.Length > 0)
            {
                var pairs = LabelPair().Matches(labelText);
                Assert.Equal(labelText.Length, pairs.Sum(p => p.Length));
                foreach (Match pair in pairs) labels[pair.Groups["key"].Value] = pair.Groups["value"].Value;
            }
            samples.Add(new PrometheusSample(name, labels, ParseValue(sample.Groups["value"].Value, lineNumber)));
        }
        return samples;
    }

    private static string Family(string name, Dictionary<string, string> types)
    {
        foreach (var suffix in (string[])["_bucket", "_sum", "_count"])
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal) && types.TryGetValue(name[..^suffix.Length], out var type) && type == "histogram")
                return name[..^suffix.Length];
        }
        return name;
    }

    private static double ParseValue(string text, int lineNumber) => text switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"line {lineNumber}: '{text}' is not a number"),
    };
}
