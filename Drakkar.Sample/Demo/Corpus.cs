using System.Text;

namespace Drakkar.Sample.Demo;

/// <summary>A small built-in text corpus, generated deterministically so every run searches the same files.</summary>
internal static class Corpus
{
    public static readonly string[] Words =
    [
        "drakkar", "longship", "fjord", "raven", "oar", "sail", "keel", "harbor", "storm", "saga", "rune", "shield",
        "axe", "mead", "hall", "jarl", "voyage", "tide", "north", "ember", "anchor", "iron", "amber", "wolf", "frost",
        "timber", "river", "island", "beacon", "compass", "harvest", "forge", "lantern", "market", "thunder", "whale",
    ];

    /// <summary>Writes <paramref name="files"/> files of <paramref name="lines"/> lines under <paramref name="directory"/>.</summary>
    public static IReadOnlyList<string> Write(string directory, int files = 6, int lines = 4_000)
    {
        Directory.CreateDirectory(directory);
        var random = new Random(20261122);
        var paths = new List<string>(files);
        for (var f = 0; f < files; f++)
        {
            var path = Path.Combine(directory, $"saga-{f + 1}.txt");
            var text = new StringBuilder(lines * 48);
            for (var l = 0; l < lines; l++)
            {
                var count = random.Next(4, 10);
                for (var w = 0; w < count; w++) text.Append(w == 0 ? "" : " ").Append(Words[random.Next(Words.Length)]);
                text.Append('\n');
            }
            File.WriteAllText(path, text.ToString());
            paths.Add(path);
        }
        return paths;
    }
}
