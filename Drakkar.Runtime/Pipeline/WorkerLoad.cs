namespace Drakkar.Pipeline;

/// <summary>
/// Global backpressure (SPEC O6): queued messages plus unfinished tasks across all partitions. Consumption pauses
/// when the load reaches <c>max_executors × backpressure_high_multiplier</c> and resumes at or below
/// <c>max_executors × backpressure_low_multiplier</c>.
/// </summary>
internal sealed class WorkerLoad(long high, long low)
{
    private long _load;

    public long High { get; } = high;
    public long Low { get; } = low;
    public long Current => Interlocked.Read(ref _load);

    /// <summary>True while consumption should stay paused; flips at the thresholds (hysteresis).</summary>
    public bool Paused { get; private set; }

    /// <summary>How many times consumption paused, and resumed, since start.</summary>
    public int Pauses { get; private set; }
    public int Resumes { get; private set; }

    public void Add(long amount) => Interlocked.Add(ref _load, amount);

    /// <summary>Re-evaluates the pause state; returns true when it changed.</summary>
    public bool Update()
    {
        var load = Current;
        if (!Paused && load >= High)
        {
            Paused = true;
            Pauses++;
            return true;
        }
        if (Paused && load <= Low)
        {
            Paused = false;
            Resumes++;
            return true;
        }
        return false;
    }

    public static WorkerLoad From(ExecutorConfig executor) => new(
        (long)executor.MaxExecutors * executor.BackpressureHighMultiplier,
        (long)executor.MaxExecutors * executor.BackpressureLowMultiplier);
}
