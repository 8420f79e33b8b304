using System.Diagnostics.Tracing;

namespace Drakkar.Bench.Report;

/// <summary>
/// Diagnostic (<c>--alloc-types</c>): which types a worker run allocates, from the runtime's own allocation sampling
/// (an event about every 100 KB allocated, naming the type that crossed the mark), so the counts are proportional to
/// bytes. In-process, so it needs no tracing tool on the machine.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly Dictionary<string, long> _byType = new(StringComparer.Ordinal);
    private volatile bool _sampling;
    // What the collections themselves did: time spent suspending threads, time from suspension to restart, and the
    // bytes gen-0 and gen-1 collections promoted (what stays alive across them is what they copy).
    private DateTime _suspendBegan, _suspended;
    private double _suspendMs, _pausedMs;
    private long _promoted0, _promoted1;
    private int _heapStats;

    public void Start()
    {
        lock (_byType)
        {
            _byType.Clear();
            (_suspendMs, _pausedMs, _promoted0, _promoted1, _heapStats) = (0, 0, 0, 0, 0);
        }
        _sampling = true;
    }

    /// <summary>The collections since <see cref="Start"/>, as one line.</summary>
    public string Collections()
    {
        lock (_byType)
            return System.FormattableString.Invariant(
                $"GC: suspending threads {_suspendMs:F0} ms, suspended {_pausedMs:F0} ms in all; promoted by gen0 {_promoted0 / 1024 / 1024.0:F1} MiB, by gen1 {_promoted1 / 1024 / 1024.0:F1} MiB over {_heapStats} collections");
    }

    /// <summary>Stops sampling; returns the most sampled types, each with its share of the samples.</summary>
    public IReadOnlyList<(string Type, double Share)> Stop(int top = 30)
    {
        _sampling = false;
        lock (_byType)
        {
            var total = Math.Max(1, _byType.Values.Sum());
            return [.. _byType.OrderByDescending(p => p.Value).Take(top).Select(p => (p.Key, (double)p.Value / total))];
        }
    }

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, GcKeyword);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!_sampling || e.EventName is not { } name || e.PayloadNames is null) return;
        if (name.StartsWith("GCSuspendEEBegin", StringComparison.Ordinal)) _suspendBegan = e.TimeStamp;
        else if (name.StartsWith("GCSuspendEEEnd", StringComparison.Ordinal))
        {
            _suspended = e.TimeStamp;
            lock (_byType) _suspendMs += (e.TimeStamp - _suspendBegan).TotalMilliseconds;
        }
        else if (name.StartsWith("GCRestartEEEnd", StringComparison.Ordinal))
        {
            lock (_byType) _pausedMs += (e.TimeStamp - _suspended).TotalMilliseconds;
        }
        else if (name.StartsWith("GCHeapStats", StringComparison.Ordinal))
        {
            lock (_byType)
            {
                _heapStats++;
                _promoted0 += Convert.ToInt64(e.Payload![e.PayloadNames.IndexOf("TotalPromotedSize0")], System.Globalization.CultureInfo.InvariantCulture);
                _promoted1 += Convert.ToInt64(e.Payload![e.PayloadNames.IndexOf("TotalPromotedSize1")], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        if (!name.StartsWith("GCAllocationTick", StringComparison.Ordinal)) return;
        var index = e.PayloadNames.IndexOf("TypeName");
        var type = index >= 0 ? e.Payload?[index]?.ToString() ?? "?" : "?";
        lock (_byType) _byType[type] = _byType.GetValueOrDefault(type) + 1;
    }
}
