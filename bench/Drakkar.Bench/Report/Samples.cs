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

    /// <summary>Drakkar ÷ baseline within each round, for rows that judge their target by it (both sides ran back to back).</summary>
    public List<double>? PerRound { get; set; }

    /// <summary>
    /// An interval that holds the true median of <see cref="PerRound"/> with at least 95 % confidence, whatever the
    /// rounds' distribution: from the k-th smallest to the k-th largest ratio, k the largest with
    /// P(Binomial(n, ½) &lt; k) ≤ 2.5 %. Null with fewer than 6 rounds (no such k).
    /// </summary>
    public (double Low, double High)? MedianInterval()
    {
        if (PerRound is not { Count: >= 6 } ratios) return null;
        var n = ratios.Count;
        var sorted = ratios.Order().ToArray();
        var (k, below, term) = (0, 0.0, Math.Pow(0.5, n));
        // below = P(B < k + 1) as k grows; term = P(B = k + 1) next.
        while (true)
        {
            below += term;
            if (below > 0.025) break;
            k++;
            term *= (double)(n - k + 1) / k;
        }
        return (sorted[k - 1], sorted[n - k]);
    }

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
