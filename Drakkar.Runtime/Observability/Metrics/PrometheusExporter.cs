using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Drakkar.Observability.Metrics;

/// <summary>
/// Renders one meter's instruments as Prometheus text format 0.0.4, listening to them with a
/// <see cref="MeterListener"/>: histograms are aggregated as they are recorded (into their advised buckets), counters
/// and gauges are read when scraped. Families appear in the order the instruments were created, label sets in
/// ordinal order of their rendered labels.
/// </summary>
/// <remarks>
/// A small exporter of our own rather than OpenTelemetry's: its Prometheus exporter is still a beta that needs
/// ASP.NET Core or <c>HttpListener</c>, and it would rename every metric after OpenTelemetry's conventions (unit
/// suffixes, <c>_total</c> handling) where dashboards rely on Drakkar's exact names.
/// </remarks>
internal sealed class PrometheusExporter : IDisposable
{
    private readonly Meter _meter;
    private readonly MeterListener _listener = new();
    private readonly Lock _gate = new();
    private readonly List<Family> _families = [];

    public PrometheusExporter(Meter meter)
    {
        _meter = meter;
        _listener.InstrumentPublished = Publish;
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((Family)state!).Record(value, tags));
        _listener.Start();
    }

    public string Export()
    {
        var text = new StringBuilder(4096);
        lock (_gate)
        {
            foreach (var family in _families) family.BeginCollect();
            // Counters and gauges report their current values into their families now.
            _listener.RecordObservableInstruments();
            foreach (var family in _families) family.Write(text);
        }
        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private void Publish(Instrument instrument, MeterListener listener)
    {
        if (!ReferenceEquals(instrument.Meter, _meter)) return;
        Family family = instrument switch
        {
            Histogram<double> histogram => new HistogramFamily(histogram),
            ObservableCounter<double> => new ValueFamily(instrument, "counter"),
            ObservableGauge<double> => new ValueFamily(instrument, "gauge"),
            _ => throw new NotSupportedException($"instrument {instrument.Name} ({instrument.GetType().Name}) has no Prometheus rendering"),
        };
        lock (_gate) _families.Add(family);
        listener.EnableMeasurementEvents(instrument, family);
    }

    private abstract class Family(Instrument instrument, string type)
    {
        protected string Name { get; } = instrument.Name;

        public abstract void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags);

        public virtual void BeginCollect()
        {
        }

        public abstract void Write(StringBuilder text);

        protected void Header(StringBuilder text) =>
            text.Append("# HELP ").Append(Name).Append(' ').Append(instrument.Description).Append('\n')
                .Append("# TYPE ").Append(Name).Append(' ').Append(type).Append('\n');

        /// <summary><c>name="value",…</c> in the order the measurement carried them, escaped as the format wants.</summary>
        protected static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (tags.Length == 0) return "";
            var text = new StringBuilder();
            for (var i = 0; i < tags.Length; i++)
            {
                if (i > 0) text.Append(',');
                text.Append(tags[i].Key).Append("=\"").Append(Escape(Convert.ToString(tags[i].Value, CultureInfo.InvariantCulture) ?? "")).Append('"');
            }
            return text.ToString();
        }

        protected static string Format(double value) =>
            double.IsPositiveInfinity(value) ? "+Inf" : value.ToString("R", CultureInfo.InvariantCulture);

        protected static string Braced(string labels) => labels.Length == 0 ? "" : "{" + labels + "}";

        private static string Escape(string value) =>
            value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
    }

    /// <summary>A counter or gauge: the values its callback reported during the current collection.</summary>
    private sealed class ValueFamily(Instrument instrument, string type) : Family(instrument, type)
    {
        private readonly List<(string Labels, double Value)> _collected = [];

        public override void BeginCollect() => _collected.Clear();

        // Only called from RecordObservableInstruments, under the exporter's lock.
        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags) => _collected.Add((Labels(tags), value));

        public override void Write(StringBuilder text)
        {
            Header(text);
            _collected.Sort(static (a, b) => string.CompareOrdinal(a.Labels, b.Labels));
            foreach (var (labels, value) in _collected) text.Append(Name).Append(Braced(labels)).Append(' ').Append(Format(value)).Append('\n');
        }
    }

    /// <summary>A histogram: per label set, a count per bucket, the sum and the total, kept as measurements arrive.</summary>
    private sealed class HistogramFamily(Histogram<double> instrument) : Family(instrument, "histogram")
    {
        private readonly double[] _bounds = [.. instrument.Advice?.HistogramBucketBoundaries ?? []];
        private readonly Lock _gate = new();
        // Copy-on-write: measurements find their series without a lock; a new label set is added under _gate.
        private Series[] _series = [];

        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var series = Find(Volatile.Read(ref _series), tags) ?? Add(tags);
            series.Observe(_bounds, value);
        }

        public override void Write(StringBuilder text)
        {
            Header(text);
            foreach (var series in Volatile.Read(ref _series).OrderBy(s => s.Labels, StringComparer.Ordinal))
            {
                var prefix = series.Labels.Length == 0 ? "" : series.Labels + ",";
                long cumulative = 0;
                for (var i = 0; i < _bounds.Length; i++)
                {
                    cumulative += Interlocked.Read(ref series.Counts[i]);
                    text.Append(Name).Append("_bucket{").Append(prefix).Append("le=\"").Append(Format(_bounds[i])).Append("\"} ")
                        .Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
                }
                var total = series.Total.ToString(CultureInfo.InvariantCulture);
                text.Append(Name).Append("_bucket{").Append(prefix).Append("le=\"+Inf\"} ").Append(total).Append('\n');
                text.Append(Name).Append("_sum").Append(Braced(series.Labels)).Append(' ').Append(Format(series.Sum.Value)).Append('\n');
                text.Append(Name).Append("_count").Append(Braced(series.Labels)).Append(' ').Append(total).Append('\n');
            }
        }

        private static Series? Find(Series[] all, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var series in all)
                if (series.Matches(tags)) return series;
            return null;
        }

        private Series Add(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            lock (_gate)
            {
                if (Find(_series, tags) is { } existing) return existing;
                var added = new Series(tags, Labels(tags), _bounds.Length);
                Volatile.Write(ref _series, [.. _series, added]);
                return added;
            }
        }
    }

    private sealed class Series(ReadOnlySpan<KeyValuePair<string, object?>> tags, string labels, int bucketCount)
    {
        private readonly KeyValuePair<string, object?>[] _tags = tags.ToArray();
        private long _total;

        public string Labels { get; } = labels;
        public long[] Counts { get; } = new long[bucketCount];
        public MetricCell Sum { get; } = new();
        public long Total => Interlocked.Read(ref _total);

        public bool Matches(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (tags.Length != _tags.Length) return false;
            for (var i = 0; i < tags.Length; i++)
                if (!string.Equals(tags[i].Key, _tags[i].Key, StringComparison.Ordinal) || !Equals(tags[i].Value, _tags[i].Value)) return false;
            return true;
        }

        public void Observe(double[] bounds, double value)
        {
            var index = Array.BinarySearch(bounds, value);
            if (index < 0) index = ~index;
            if (index < Counts.Length) Interlocked.Increment(ref Counts[index]);
            Sum.Add(value);
            Interlocked.Increment(ref _total);
        }
    }
}
