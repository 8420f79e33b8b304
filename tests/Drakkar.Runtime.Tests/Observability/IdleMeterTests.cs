using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;

namespace Drakkar.Runtime.Tests.Observability;

/// <summary>Python Drakkar's idle counters: idle executor slots while work waits, and a worker with nothing to do.</summary>
public sealed class IdleMeterTests
{
    [Fact]
    public void Idle_slots_count_while_work_waits_and_idle_seconds_while_nothing_is_queued_or_paused()
    {
        using var metrics = new DrakkarMetrics();
        var running = 1;
        metrics.PoolActive.SampleWith(() => running);
        long inFlightPayloads = 0;
        var load = new WorkerLoad(high: 8, low: 2, () => inFlightPayloads, maxInFlightPayloads: 100);
        var meter = new IdleMeter(metrics, load, slots: 4);

        // Five messages or tasks in the pipeline, one slot running: three slots idle for a second while work waits.
        load.Add(5);
        meter.Sample(TimeSpan.FromSeconds(1));
        Assert.Equal(3, metrics.ExecutorIdleSlotSeconds.Value());
        Assert.Equal(0, metrics.ConsumerIdleSeconds.Value());

        // Every slot busy with the waiting work: nothing idle.
        running = 4;
        load.Add(-1);
        meter.Sample(TimeSpan.FromSeconds(1));
        Assert.Equal(3, metrics.ExecutorIdleSlotSeconds.Value());

        // Nothing left to do: the worker idles.
        running = 0;
        load.Add(-4);
        meter.Sample(TimeSpan.FromSeconds(0.5));
        Assert.Equal(0.5, metrics.ConsumerIdleSeconds.Value());

        // Paused for backpressure (payloads in flight to a slow sink) is not idle.
        inFlightPayloads = 100;
        Assert.True(load.Update());
        meter.Sample(TimeSpan.FromSeconds(2));
        Assert.Equal(0.5, metrics.ConsumerIdleSeconds.Value());
        Assert.Equal(3, metrics.ExecutorIdleSlotSeconds.Value());
    }
}
