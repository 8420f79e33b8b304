using Drakkar.Hosting;
using Drakkar.Observability.Metrics;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Runtime.Tests.Hosting;

public sealed class PeriodicRunnerTests
{
    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{what} did not happen within 10s");
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task A_periodic_method_repeats_and_never_overlaps_itself()
    {
        var running = 0;
        var maxRunning = 0;
        var runs = 0;
        var metrics = new DrakkarMetrics();
        var registration = new PeriodicRegistration("tick", TimeSpan.FromMilliseconds(5), PeriodicOnError.Continue, async ct =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref maxRunning, now);
            await Task.Delay(15, ct);
            Interlocked.Decrement(ref running);
            Interlocked.Increment(ref runs);
        });
        var runner = new PeriodicRunner([registration], metrics, NullLogger.Instance, TimeProvider.System);
        runner.Start();
        await Until(() => Volatile.Read(ref runs) >= 4, "four runs");
        await runner.DisposeAsync();
        Assert.Equal(1, maxRunning);
        Assert.True(metrics.PeriodicRuns.Value("tick", "ok") >= 4);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1e-9)]
    [InlineData(60 * 86400.0)]
    public void An_interval_a_timer_cannot_wait_is_a_startup_error_naming_the_method(double seconds)
    {
        // Made by hand (the generator refuses such [Periodic] intervals): zero spun, 60 days threw in Task.Delay and the
        // method never ran, without a word.
        var runner = new PeriodicRunner([new PeriodicRegistration("hand-made", TimeSpan.FromSeconds(seconds), PeriodicOnError.Continue, _ => ValueTask.CompletedTask)],
            new DrakkarMetrics(), NullLogger.Instance, TimeProvider.System);

        var error = Assert.Throws<WorkerStartupException>(runner.Start);

        Assert.StartsWith("periodic method 'hand-made' has an interval of ", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("use between 0.001 s and 4294967 s (about 49.7 days)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_error_continue_keeps_the_schedule_and_stop_ends_it()
    {
        var continued = 0;
        var stopped = 0;
        var metrics = new DrakkarMetrics();
        var runner = new PeriodicRunner(
        [
            new PeriodicRegistration("keeps-going", TimeSpan.FromMilliseconds(2), PeriodicOnError.Continue, _ =>
            {
                Interlocked.Increment(ref continued);
                throw new InvalidOperationException("flaky");
            }),
            new PeriodicRegistration("gives-up", TimeSpan.FromMilliseconds(2), PeriodicOnError.Stop, _ =>
            {
                Interlocked.Increment(ref stopped);
                throw new InvalidOperationException("broken");
            }),
        ], metrics, NullLogger.Instance, TimeProvider.System);
        runner.Start();
        await Until(() => Volatile.Read(ref continued) >= 5, "five failing runs that continue");
        await runner.DisposeAsync();
        Assert.Equal(1, stopped);
        Assert.Equal(1, metrics.PeriodicRuns.Value("gives-up", "error"));
    }

    [Fact]
    public async Task Shutdown_cancels_a_run_in_progress()
    {
        var cancelled = new TaskCompletionSource();
        var started = new TaskCompletionSource();
        var runner = new PeriodicRunner(
        [
            new PeriodicRegistration("long", TimeSpan.FromMilliseconds(1), PeriodicOnError.Continue, async ct =>
            {
                started.TrySetResult();
                try { await Task.Delay(Timeout.Infinite, ct); }
                catch (OperationCanceledException) { cancelled.TrySetResult(); throw; }
            }),
        ], new DrakkarMetrics(), NullLogger.Instance, TimeProvider.System);
        runner.Start();
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await runner.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(cancelled.Task.IsCompleted);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
