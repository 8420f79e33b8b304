using System.Diagnostics;
using Drakkar.Observability.Metrics;
using Microsoft.Extensions.Logging;

namespace Drakkar.Hosting;

/// <summary>
/// Runs the handler's periodic methods (SPEC P3): each on a fixed delay after the previous run ends, so a run never
/// overlaps itself; on failure it continues or stops as registered; all are cancelled first at shutdown.
/// </summary>
internal sealed partial class PeriodicRunner(IReadOnlyList<PeriodicRegistration> registrations, DrakkarMetrics metrics,
    ILogger logger, TimeProvider time) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task[] _loops = [];

    /// <summary>How long a stop waits for the running methods after cancelling them, at most.</summary>
    public static readonly TimeSpan StopPatience = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Starts a loop per method. An interval a timer cannot wait (under 1 ms, which spins; over about 49.7 days, which
    /// throws and never runs the method) is a start-up error naming the method: the source generator refuses such
    /// <c>[Periodic]</c> intervals and the configuration such keys, so only a registration made by hand gets here.
    /// </summary>
    public void Start()
    {
        foreach (var r in registrations)
        {
            if (r.Interval < TimeSpan.FromSeconds(Configuration.ConfigRules.MinIntervalSeconds) || r.Interval > TimeSpan.FromSeconds(Configuration.ConfigRules.MaxTimerSeconds))
                throw new WorkerStartupException($"periodic method '{r.Name}' has an interval of {r.Interval.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)} s; use between 0.001 s and 4294967 s (about 49.7 days)");
        }
        _loops = [.. registrations.Select(r => Task.Run(() => LoopAsync(r, _stop.Token)))];
    }

    public ValueTask DisposeAsync() => StopAsync(StopPatience);

    /// <summary>
    /// Cancels every method and waits for the running ones up to <paramref name="patience"/>. A method that does not
    /// watch its token would otherwise hold the stop for good (no drain, no commit, until the process is killed); it
    /// is named in a warning and left running, and the stop goes on.
    /// </summary>
    public ValueTask StopAsync(TimeSpan patience)
    {
        // One stop, which every caller awaits: a second caller (a dispose during the stop) must not go on before it.
        lock (_stop) _stopping ??= StopOnceAsync(patience);
        return new ValueTask(_stopping);
    }

    private Task? _stopping;

    private async Task StopOnceAsync(TimeSpan patience)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        var all = Task.WhenAll(_loops);
        if (await Task.WhenAny(all, Task.Delay(patience < TimeSpan.Zero ? TimeSpan.Zero : patience)).ConfigureAwait(false) != all)
        {
            var running = registrations.Where((_, i) => !_loops[i].IsCompleted).Select(r => r.Name);
            LogPeriodicDidNotStop(string.Join(", ", running), patience.TotalSeconds);
        }
        // Not disposed: a method left running may still read its token.
    }

    private async Task LoopAsync(PeriodicRegistration registration, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(registration.Interval, time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var started = Stopwatch.GetTimestamp();
            try
            {
                await registration.Run(stop).ConfigureAwait(false);
                metrics.PeriodicRuns.Increment(registration.Name, "ok");
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                metrics.PeriodicRuns.Increment(registration.Name, "error");
                var stopping = registration.OnError == PeriodicOnError.Stop;
                LogPeriodicFailed(e, registration.Name, stopping ? "stopped" : "continues");
                if (stopping) return;
            }
            finally
            {
                metrics.PeriodicDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds, registration.Name);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Periodic method(s) {Names} did not return within {Seconds} s of the stop cancelling their CancellationToken; the stop goes on without them (a periodic method should pass its token on or check it)")]
    private partial void LogPeriodicDidNotStop(string names, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "Periodic method {Name} failed; its schedule {Outcome}")]
    private partial void LogPeriodicFailed(Exception error, string name, string outcome);
}
