using Drakkar.Pipeline;

namespace Drakkar.Runtime.Tests.Pipeline;

public sealed class WorkerLoadTests
{
    [Fact]
    public void Pauses_at_high_and_resumes_only_at_low()
    {
        var load = new WorkerLoad(high: 10, low: 2);
        load.Add(9);
        Assert.False(load.Update());
        load.Add(1);
        Assert.True(load.Update());
        Assert.True(load.Paused);
        load.Add(-7);
        Assert.False(load.Update());
        Assert.True(load.Paused);
        load.Add(-1);
        Assert.True(load.Update());
        Assert.False(load.Paused);
        Assert.Equal((1, 1), (load.Pauses, load.Resumes));
    }

    [Fact]
    public async Task A_paused_poll_thread_waiting_for_room_is_woken_when_the_load_falls_to_low_not_by_its_timeout()
    {
        var load = new WorkerLoad(high: 10, low: 2);
        load.Add(10);
        Assert.True(load.Update());

        using var waiting = new ManualResetEventSlim();
        var woken = Task.Factory.StartNew(() =>
        {
            waiting.Set();
            return load.WaitForRoom(TimeSpan.FromMinutes(5));
        }, TaskCreationOptions.LongRunning);
        waiting.Wait();
        load.Add(-5);
        load.Add(-3);

        // Without the signal the wait would last its five minutes.
        Assert.True(await woken.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(load.Update());
        Assert.False(load.Paused);
    }

    [Fact]
    public void A_fall_to_low_just_before_the_wait_is_not_lost()
    {
        var load = new WorkerLoad(high: 10, low: 2);
        load.Add(10);
        Assert.True(load.Update());

        // The load falls between the poll thread's Update and its wait: the signal was set before the wait reset it.
        load.Add(-8);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        Assert.True(load.WaitForRoom(TimeSpan.FromSeconds(20)));
        Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), $"returned after {waited.Elapsed.TotalSeconds} s");
        Assert.True(load.Update());
        Assert.False(load.Paused);
    }

    [Fact]
    public void Waiting_for_room_while_only_the_delivery_load_holds_the_pause_waits_the_timeout_instead_of_returning_at_once()
    {
        var inFlight = 100L;
        var load = new WorkerLoad(high: 10, low: 2, () => inFlight, maxInFlightPayloads: 100);
        load.Add(1);
        Assert.True(load.Update());
        Assert.True(load.Paused);

        // The executor load has room; the payloads in flight hold the pause and have no signal. Returning at once here
        // made the poll thread spin between this call and Update for as long as a slow sink held the payloads.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(load.WaitForRoom(TimeSpan.FromMilliseconds(200)));
        Assert.True(waited.Elapsed >= TimeSpan.FromMilliseconds(150), $"returned after {waited.Elapsed.TotalMilliseconds} ms");

        inFlight = 50;
        Assert.True(load.Update());
        Assert.False(load.Paused);
    }

    [Fact]
    public void A_sink_holding_payloads_for_an_outage_pauses_consumption_however_few_are_in_flight_until_it_is_back()
    {
        var delivery = new RecordingDelivery();
        var load = WorkerLoad.From(new ExecutorConfig { MaxExecutors = 2 }, delivery);
        Assert.False(load.Update());

        delivery.HoldingForOutage = true;
        Assert.True(load.Update());
        Assert.True(load.Paused);

        delivery.HoldingForOutage = false;
        Assert.True(load.Update());
        Assert.False(load.Paused);
    }

    [Fact]
    public void Waiting_for_room_returns_false_after_the_timeout_when_the_executor_load_stays_high()
    {
        var load = new WorkerLoad(high: 10, low: 2);
        load.Add(10);
        Assert.False(load.WaitForRoom(TimeSpan.FromMilliseconds(20)));
    }
}
