using Drakkar.Pipeline;

namespace Drakkar.Observability.Metrics;

/// <summary>
/// Python Drakkar's two idle counters, sampled every <see cref="Interval"/> from the backpressure load (queued messages
/// plus unfinished tasks) and the executor slots in use:
/// <c>drakkar_executor_idle_slot_seconds_total</c> adds idle slots × seconds while work waits that no slot is running
/// (2 slots idle for 3 s while messages are queued add 6), and <c>drakkar_consumer_idle_seconds_total</c> adds the
/// seconds with nothing queued, nothing running and consumption not paused for backpressure: the worker has nothing
/// to do. Sampling keeps both off the pipeline's path; each is exact to within a sample.
/// </summary>
internal sealed class IdleMeter : IAsyncDisposable
{
    internal static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    private readonly DrakkarMetrics _metrics;
    private readonly WorkerLoad _load;
    private readonly int _slots;
    private readonly MetricCell _idleSlotSeconds;
    private readonly MetricCell _idleSeconds;
    private readonly PeriodicTimer _timer = new(Interval);
    private Task? _loop;

    /// <summary>A meter that samples only when <see cref="Sample"/> is called (<see cref="Start"/> samples on its own).</summary>
    internal IdleMeter(DrakkarMetrics metrics, WorkerLoad load, int slots)
    {
        _metrics = metrics;
        _load = load;
        _slots = slots;
        _idleSlotSeconds = metrics.ExecutorIdleSlotSeconds.WithLabels();
        _idleSeconds = metrics.ConsumerIdleSeconds.WithLabels();
    }

    /// <summary>Starts sampling <paramref name="load"/> every <see cref="Interval"/> for a pool of <paramref name="slots"/> executor slots.</summary>
    public static IdleMeter Start(DrakkarMetrics metrics, WorkerLoad load, int slots)
    {
        var meter = new IdleMeter(metrics, load, slots);
        meter._loop = Task.Run(meter.SampleLoopAsync);
        return meter;
    }

    /// <summary>Adds one sample covering <paramref name="elapsed"/> to the counters.</summary>
    internal void Sample(TimeSpan elapsed)
    {
        var running = (long)_metrics.PoolActive.Current;
        var load = _load.Current;
        if (load > running) _idleSlotSeconds.Add(Math.Max(0, _slots - running) * elapsed.TotalSeconds);
        else if (load == 0 && !_load.Paused) _idleSeconds.Add(elapsed.TotalSeconds);
    }

    private async Task SampleLoopAsync()
    {
        var last = System.Diagnostics.Stopwatch.GetTimestamp();
        while (await _timer.WaitForNextTickAsync().ConfigureAwait(false))
        {
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            Sample(System.Diagnostics.Stopwatch.GetElapsedTime(last, now));
            last = now;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _timer.Dispose();
        if (_loop is not null) await _loop.ConfigureAwait(false);
    }
}
