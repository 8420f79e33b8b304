using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Drakkar.Observability.Metrics;

/// <summary>
/// The worker's <see cref="System.Diagnostics.Metrics"/> instruments, all on one <c>Drakkar</c> meter (SPEC X6), and
/// their Prometheus text exposition (<see cref="Export"/>), rendered by a <see cref="PrometheusExporter"/> that reads
/// those instruments like any other listener (dotnet-counters, OpenTelemetry) does.
/// </summary>
/// <remarks>
/// Counters and gauges are observable instruments over <see cref="MetricCell"/>s: the hot path keeps one interlocked
/// add on a cell it resolved once, and listeners read the cells when they collect. Histograms are
/// <see cref="Histogram{T}"/> instruments whose bucket boundaries travel as instrument advice.
/// </remarks>
internal sealed class MetricRegistry : IDisposable
{
    /// <summary>The meter's name: what <c>dotnet-counters monitor --counters Drakkar</c> and OpenTelemetry's <c>AddMeter</c> select.</summary>
    public const string MeterName = "Drakkar";

    private readonly PrometheusExporter _exporter;

    public MetricRegistry()
    {
        Meter = new Meter(MeterName, Hosting.DrakkarVersion.Text);
        _exporter = new PrometheusExporter(Meter);
    }

    /// <summary>This worker's meter (each worker has its own, all named <see cref="MeterName"/>).</summary>
    public Meter Meter { get; }

    public Counter Counter(string name, string help, params string[] labelNames) => new(Meter, name, help, labelNames);

    public Gauge Gauge(string name, string help, params string[] labelNames) => new(Meter, name, help, labelNames);

    public Histogram Histogram(string name, string help, double[] buckets, params string[] labelNames) =>
        new(Meter, name, help, buckets, labelNames);

    /// <summary>Every instrument in Prometheus text exposition format 0.0.4.</summary>
    public string Export() => _exporter.Export();

    public void Dispose()
    {
        _exporter.Dispose();
        Meter.Dispose();
    }
}

/// <summary>One instrument of the registry: its name and the label names its measurements carry, in order.</summary>
internal abstract class Metric(string name, string[] labelNames)
{
    public string Name { get; } = name;
    protected string[] LabelNames { get; } = labelNames;

    private protected void CheckLabels(ReadOnlySpan<string> labelValues)
    {
        if (labelValues.Length != LabelNames.Length)
            throw new ArgumentException($"metric {Name} takes labels ({string.Join(", ", LabelNames)}), got {labelValues.Length} values");
    }

    private protected KeyValuePair<string, object?>[] Tags(ReadOnlySpan<string> labelValues)
    {
        var tags = new KeyValuePair<string, object?>[labelValues.Length];
        for (var i = 0; i < tags.Length; i++) tags[i] = new(LabelNames[i], labelValues[i]);
        return tags;
    }
}

/// <summary>One labelled value of a counter or gauge; keep it to skip the label lookup on hot paths.</summary>
internal sealed class MetricCell
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

/// <summary>A monotonic counter: an <see cref="ObservableCounter{T}"/> reporting one cumulative value per label set.</summary>
internal class Counter : Metric
{
    private readonly ConcurrentDictionary<string, Series> _series = new(StringComparer.Ordinal);

    internal Counter(Meter meter, string name, string help, string[] labelNames) : this(name, labelNames) =>
        meter.CreateObservableCounter(name, Observe, unit: null, description: help);

    private protected Counter(string name, string[] labelNames) : base(name, labelNames)
    {
        // An unlabelled value exists from the start, so a scrape shows 0 rather than nothing.
        if (labelNames.Length == 0) _series[""] = new Series(new MetricCell(), []);
    }

    // The label parameters are spans: a params array would be allocated on every call of a hot path.
    public MetricCell WithLabels(params ReadOnlySpan<string> labelValues)
    {
        var key = Key(labelValues);
        if (_series.TryGetValue(key, out var series)) return series.Cell;
        var tags = Tags(labelValues);
        return _series.GetOrAdd(key, static (_, tags) => new Series(new MetricCell(), tags), tags).Cell;
    }

    public void Increment(params ReadOnlySpan<string> labelValues) => WithLabels(labelValues).Add(1);

    /// <summary>The current value; 0 for a label set never recorded (without adding it to the exposition).</summary>
    public double Value(params ReadOnlySpan<string> labelValues) => _series.TryGetValue(Key(labelValues), out var series) ? series.Cell.Value : 0;

    /// <summary>True when the label set is in the exposition.</summary>
    public bool Has(params ReadOnlySpan<string> labelValues) => _series.ContainsKey(Key(labelValues));

    private protected void RemoveSeries(ReadOnlySpan<string> labelValues) => _series.TryRemove(Key(labelValues), out _);

    private string Key(ReadOnlySpan<string> labelValues)
    {
        CheckLabels(labelValues);
        return labelValues.Length switch
        {
            0 => "",
            1 => labelValues[0],
            _ => string.Join('\0', labelValues),
        };
    }

    /// <summary>Runs before the cells are read, for values sampled at collection time.</summary>
    private protected virtual void BeforeObserve()
    {
    }

    private protected IEnumerable<Measurement<double>> Observe()
    {
        BeforeObserve();
        var measurements = new List<Measurement<double>>(_series.Count);
        foreach (var series in _series.Values) measurements.Add(new Measurement<double>(series.Cell.Value, series.Tags));
        return measurements;
    }

    private sealed record Series(MetricCell Cell, KeyValuePair<string, object?>[] Tags);
}

/// <summary>A value that goes up and down: an <see cref="ObservableGauge{T}"/> reporting the last value set per label set.</summary>
internal sealed class Gauge : Counter
{
    private Func<double>? _sample;

    internal Gauge(Meter meter, string name, string help, string[] labelNames) : base(name, labelNames) =>
        meter.CreateObservableGauge(name, Observe, unit: null, description: help);

    public void Set(double value, params ReadOnlySpan<string> labelValues) => WithLabels(labelValues).Set(value);

    /// <summary>
    /// Takes the label set out of the exposition: for a value about something this worker no longer has (a partition
    /// that went to another worker), which would otherwise stay at its last value. A cell kept from before is detached.
    /// </summary>
    public void Remove(params ReadOnlySpan<string> labelValues) => RemoveSeries(labelValues);

    /// <summary>
    /// Reads the (unlabelled) value from <paramref name="sample"/> whenever a listener collects: for values cheaper to
    /// read when scraped (a pool's active count) than to keep current on every change.
    /// </summary>
    public void SampleWith(Func<double> sample) => _sample = sample;

    /// <summary>The (unlabelled) value now: sampled when <see cref="SampleWith"/> gave a source, else the last one set.</summary>
    public double Current => _sample is { } sample ? sample() : Value();

    private protected override void BeforeObserve()
    {
        if (_sample is { } sample) WithLabels().Set(sample());
    }
}

/// <summary>A distribution: a <see cref="Histogram{T}"/> whose Prometheus buckets are its advised boundaries.</summary>
internal sealed class Histogram : Metric
{
    private readonly Histogram<double> _instrument;

    internal Histogram(Meter meter, string name, string help, double[] buckets, string[] labelNames) : base(name, labelNames) =>
        _instrument = meter.CreateHistogram(name, unit: "s", description: help, tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [.. buckets.Order()] });

    public void Observe(double value, params ReadOnlySpan<string> labelValues)
    {
        CheckLabels(labelValues);
        switch (labelValues.Length)
        {
            case 0:
                _instrument.Record(value);
                break;
            case 1:
                _instrument.Record(value, new KeyValuePair<string, object?>(LabelNames[0], labelValues[0]));
                break;
            case 2:
                _instrument.Record(value, new KeyValuePair<string, object?>(LabelNames[0], labelValues[0]),
                    new KeyValuePair<string, object?>(LabelNames[1], labelValues[1]));
                break;
            default:
                _instrument.Record(value, Tags(labelValues));
                break;
        }
    }
}
