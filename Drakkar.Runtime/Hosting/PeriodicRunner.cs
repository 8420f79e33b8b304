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

    public void Start() => _loops = [.. registrations.Select(r => Task.Run(() => LoopAsync(r, _stop.Token)))];

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).ConfigureAwait(false);
        _stop.Dispose();
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

    [LoggerMessage(Level = LogLevel.Error, Message = "Periodic method {Name} failed; its schedule {Outcome}")]
    private partial void LogPeriodicFailed(Exception error, string name, string outcome);
}
