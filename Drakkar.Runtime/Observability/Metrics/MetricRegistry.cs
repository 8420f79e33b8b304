using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Drakkar.Observability.Metrics;

/// <summary>A tiny Prometheus registry: counters, gauges and histograms with labels, exported as text format 0.0.4.</summary>
public sealed class MetricRegistry
{
    private readonly List<Metric> _metrics = [];
    private readonly List<Action> _beforeExport = [];
    private readonly Lock _gate = new();

    public Counter Counter(string name, string help, params string[] labelNames) => Add(new Counter(name, help, labelNames));

    public Gauge Gauge(string name, string help, params string[] labelNames) => Add(new Gauge(name, help, labelNames));

    public Histogram Histogram(string name, string help, double[] buckets, params string[] labelNames) =>
        Add(new Histogram(name, help, buckets, labelNames));

    /// <summary>
    /// Runs <paramref name="sample"/> before every <see cref="Export"/>: for gauges that are cheaper to read when
    /// scraped (a pool's active count) than to keep current on every change.
    /// </summary>
    public void OnExport(Action sample)
    {
        lock (_gate) _beforeExport.Add(sample);
    }

    /// <summary>Every metric in Prometheus text exposition format.</summary>
    public string Export()
    {
        var text = new StringBuilder(4096);
        Metric[] metrics;
        Action[] samples;
        lock (_gate)
        {
            metrics = [.. _metrics];
            samples = [.. _beforeExport];
        }
        foreach (var sample in samples) sample();
        foreach (var metric in metrics) metric.Export(text);
        return text.ToString();
    }

    private T Add<T>(T metric) where T : Metric
    {
        lock (_gate) _metrics.Add(metric);
        return metric;
    }
}

public abstract class Metric(string name, string help, string[] labelNames)
{
    public string Name { get; } = name;
    protected string Help { get; } = help;
    protected string[] LabelNames { get; } = labelNames;

    internal abstract void Export(StringBuilder text);

    protected string Key(string[] labelValues)
    {
        if (labelValues.Length != LabelNames.Length)
            throw new ArgumentException($"metric {Name} takes labels ({string.Join(", ", LabelNames)}), got {labelValues.Length} values");
        if (labelValues.Length == 0) return "";
        var text = new StringBuilder();
        for (var i = 0; i < labelValues.Length; i++)
        {
            if (i > 0) text.Append(',');
            text.Append(LabelNames[i]).Append("=\"").Append(Escape(labelValues[i])).Append('"');
        }
        return text.ToString();
    }

    protected void Header(StringBuilder text, string type) =>
        text.Append("# HELP ").Append(Name).Append(' ').Append(Help).Append('\n')
            .Append("# TYPE ").Append(Name).Append(' ').Append(type).Append('\n');

    protected static string Format(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" : value.ToString("R", CultureInfo.InvariantCulture);

    protected static string Braced(string key) => key.Length == 0 ? "" : "{" + key + "}";

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}

/// <summary>One labelled value of a counter or gauge; keep it to skip the label lookup on hot paths.</summary>
public sealed class MetricCell
{
    private long _bits;

    public double Value => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _bits));

    public void Add(double amount)
    {
        long current, next;
        do
        {
            current = Interlocked.Read(ref _bits);
            next = BitConverter.DoubleToInt64Bits(BitConverter.Int64BitsToDouble(current) + amount);
        }
        while (Interlocked.CompareExchange(ref _bits, next, current) != current);
    }

    public void Increment() => Add(1);

    public void Set(double value) => Interlocked.Exchange(ref _bits, BitConverter.DoubleToInt64Bits(value));
}

public class Counter : Metric
{
    private readonly ConcurrentDictionary<string, MetricCell> _cells = new(StringComparer.Ordinal);

    internal Counter(string name, string help, string[] labelNames) : base(name, help, labelNames)
    {
        if (labelNames.Length == 0) _cells[""] = new MetricCell();
    }

    protected virtual string Type => "counter";

    public MetricCell WithLabels(params string[] labelValues) => _cells.GetOrAdd(Key(labelValues), static _ => new MetricCell());

    public void Increment(params string[] labelValues) => WithLabels(labelValues).Add(1);

    public double Value(params string[] labelValues) => _cells.TryGetValue(Key(labelValues), out var cell) ? cell.Value : 0;

    internal override void Export(StringBuilder text)
    {
        Header(text, Type);
        foreach (var (key, cell) in _cells.OrderBy(c => c.Key, StringComparer.Ordinal))
            text.Append(Name).Append(Braced(key)).Append(' ').Append(Format(cell.Value)).Append('\n');
    }
}

public sealed class Gauge : Counter
{
    internal Gauge(string name, string help, string[] labelNames) : base(name, help, labelNames)
    {
    }

    protected override string Type => "gauge";

    public void Set(double value, params string[] labelValues) => WithLabels(labelValues).Set(value);
}

public sealed class Histogram : Metric
{
    private readonly double[] _buckets;
    private readonly ConcurrentDictionary<string, Series> _series = new(StringComparer.Ordinal);

    internal Histogram(string name, string help, double[] buckets, string[] labelNames) : base(name, help, labelNames) =>
        _buckets = [.. buckets.Order()];

    public void Observe(double value, params string[] labelValues) =>
        _series.GetOrAdd(Key(labelValues), _ => new Series(_buckets.Length)).Observe(_buckets, value);

    public long Count(params string[] labelValues) => _series.TryGetValue(Key(labelValues), out var s) ? s.Total : 0;

    internal override void Export(StringBuilder text)
    {
        Header(text, "histogram");
        foreach (var (key, series) in _series.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            var prefix = key.Length == 0 ? "" : key + ",";
            long cumulative = 0;
            for (var i = 0; i < _buckets.Length; i++)
            {
                cumulative += Interlocked.Read(ref series.Counts[i]);
                text.Append(Name).Append("_bucket{").Append(prefix).Append("le=\"").Append(Format(_buckets[i])).Append("\"} ")
                    .Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
            text.Append(Name).Append("_bucket{").Append(prefix).Append("le=\"+Inf\"} ").Append(series.Total.ToString(CultureInfo.InvariantCulture)).Append('\n');
            text.Append(Name).Append("_sum").Append(Braced(key)).Append(' ').Append(Format(series.Sum.Value)).Append('\n');
            text.Append(Name).Append("_count").Append(Braced(key)).Append(' ').Append(series.Total.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
    }

    private sealed class Series(int bucketCount)
    {
        public readonly long[] Counts = new long[bucketCount];
        public readonly MetricCell Sum = new();
        private long _total;

        public long Total => Interlocked.Read(ref _total);

        public void Observe(double[] buckets, double value)
        {
            var index = Array.BinarySearch(buckets, value);
            if (index < 0) index = ~index;
            if (index < Counts.Length) Interlocked.Increment(ref Counts[index]);
            Sum.Add(value);
            Interlocked.Increment(ref _total);
        }
    }
}
