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
    public void Waiting_for_room_returns_at_once_when_the_load_is_already_low_and_false_after_the_timeout_when_it_stays_high()
    {
        var load = new WorkerLoad(high: 10, low: 2);
        load.Add(2);
        Assert.True(load.WaitForRoom(TimeSpan.FromMinutes(5)));
        load.Add(8);
        Assert.False(load.WaitForRoom(TimeSpan.FromMilliseconds(20)));
    }
}
