using System.Globalization;

namespace Drakkar.Bench.Report;

/// <summary>
/// One table row: Drakkar and its baseline measured in the same rounds, alternating. Values are "higher is better"
/// rates unless <see cref="LowerIsBetter"/> (times, sizes), so the ratio always reads "Drakkar as a share of the
/// baseline": above 1 means Drakkar is ahead.
/// </summary>
internal sealed class Samples(string scenario, string unit, string baseline, string target, bool lowerIsBetter = false)
{
    public string Scenario { get; } = scenario;
    public string Unit { get; } = unit;
    public string Baseline { get; } = baseline;
    public string Target { get; } = target;
    public bool LowerIsBetter { get; } = lowerIsBetter;
    public List<double> Drakkar { get; } = [];
    public List<double> Reference { get; } = [];

    /// <summary>Extra per-row facts (µs/task and the like) derived from the medians.</summary>
    public string Note { get; set; } = "";

    public double Ratio => LowerIsBetter ? Median(Reference) / Median(Drakkar) : Median(Drakkar) / Median(Reference);

    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    public static string Format(double value) => value switch
    {
        double.NaN => "–",
        >= 10_000 => value.ToString("N0", CultureInfo.InvariantCulture),
        >= 100 => value.ToString("F0", CultureInfo.InvariantCulture),
        >= 10 => value.ToString("F1", CultureInfo.InvariantCulture),
        _ => value.ToString("F2", CultureInfo.InvariantCulture),
    };

    public static string Spread(IReadOnlyList<double> values) =>
        values.Count == 0 ? "–" : $"{Format(values.Min())}–{Format(values.Max())}";
}
