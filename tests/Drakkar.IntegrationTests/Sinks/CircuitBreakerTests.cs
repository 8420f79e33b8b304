using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Microsoft.Extensions.Logging;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

public sealed class CircuitBreakerTests
{
    private readonly ManualClock _clock = new();
    private readonly DrakkarMetrics _metrics = new();
    private readonly RecordingDlq _dlq = new();
    private readonly LogCapture _logs = new();
    private int _hookCalls;
    private volatile bool _healthy;

    private (SinkManager Manager, ScriptedSink Sink) Build(Func<SinkBatch, int, ValueTask>? behavior = null)
    {
        var sink = new ScriptedSink("http", "hook")
        {
            Behavior = behavior ?? ((_, _) => _healthy ? ValueTask.CompletedTask : throw new SinkTransientException("HTTP 503")),
        };
        var manager = new SinkManager([sink], _dlq, new SinkManagerOptions
        {
            Time = _clock,
            CircuitBreaker = new CircuitBreakerConfig { FailureThreshold = 3, CooldownSeconds = 30 },
            OnDeliveryError = _ => { Interlocked.Increment(ref _hookCalls); return ValueTask.FromResult(DeliveryAction.Dlq); },
        }, _metrics, _logs);
        return (manager, sink);
    }

    private double Gauge => _metrics.SinkCircuitOpen.Value("http", "hook");

    [Fact]
    public async Task The_state_gauge_exists_before_any_trip()
    {
        Build();
        Assert.Contains("drakkar_sink_circuit_open{sink_type=\"http\",sink_name=\"hook\"} 0", _metrics.Registry.Export());
    }

    [Fact]
    public async Task After_the_threshold_the_breaker_opens_and_batches_go_to_the_dlq_without_the_sink_or_the_hook()
    {
        var (manager, sink) = Build();
        for (var i = 0; i < 3; i++) await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Equal(1.0, Gauge);
        Assert.Equal(1, _metrics.SinkCircuitTrips.Value("http", "hook"));
        Assert.Equal(3, sink.Calls);
        Assert.Equal(3, _hookCalls);
        var opened = Assert.Single(_logs.Containing("circuit opened"));
        Assert.Equal(LogLevel.Warning, opened.Level);
        Assert.Equal("Sink http/hook: circuit opened after 3 consecutive failure(s) that a retry could fix (the destination looks unreachable); last: HTTP 503",
            opened.Message);

        await manager.DeliverAsync(Http(2), Origin(), default);

        Assert.Equal(3, sink.Calls);
        Assert.Equal(3, _hookCalls);
        var letter = _dlq.Letters.Last();
        Assert.Equal(SinkManager.CircuitOpenError, letter.Error);
        Assert.Equal(2, letter.Payloads.Count);
        Assert.Equal(0, letter.AttemptCount);
        Assert.Equal("circuit open", manager.StatsOf("http", "hook").LastError);
    }

    [Fact]
    public async Task After_the_cooldown_one_probe_goes_through_while_concurrent_batches_take_the_open_route()
    {
        var probeEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseProbe = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (manager, sink) = Build(async (_, call) =>
        {
            if (call <= 3) throw new SinkTransientException("HTTP 503");
            probeEntered.TrySetResult();
            await releaseProbe.Task;
        });
        for (var i = 0; i < 3; i++) await manager.DeliverAsync(Http(1), Origin(), default);
        _clock.Advance(TimeSpan.FromSeconds(29));
        await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Equal(3, sink.Calls);

        _clock.Advance(TimeSpan.FromSeconds(1));
        var probe = manager.DeliverAsync(Http(1), Origin(), default).AsTask();
        await probeEntered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0.5, Gauge);

        var lettersBefore = _dlq.Letters.Count;
        await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => manager.DeliverAsync(Http(1), Origin(), default).AsTask()));
        Assert.Equal(4, sink.Calls);
        Assert.Equal(lettersBefore + 5, _dlq.Letters.Count);

        releaseProbe.SetResult();
        await probe;
        Assert.Equal(0.0, Gauge);
        Assert.Equal(CircuitState.Closed, manager.StatsOf("http", "hook").Circuit);
        await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Equal(5, sink.Calls);
    }

    [Fact]
    public async Task A_failed_probe_reopens_with_a_fresh_cooldown_and_counts_another_trip()
    {
        var (manager, sink) = Build();
        for (var i = 0; i < 3; i++) await manager.DeliverAsync(Http(1), Origin(), default);
        _clock.Advance(TimeSpan.FromSeconds(30));
        await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Equal(4, sink.Calls);
        Assert.Equal(1.0, Gauge);
        Assert.Equal(2, _metrics.SinkCircuitTrips.Value("http", "hook"));
        // Said once, when it opened; a failed probe re-opens it silently (the trips counter counts it).
        Assert.Single(_logs.Containing("circuit opened"));

        _clock.Advance(TimeSpan.FromSeconds(20));
        await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Equal(4, sink.Calls);

        _healthy = true;
        _clock.Advance(TimeSpan.FromSeconds(10));
        await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Equal(5, sink.Calls);
        Assert.Equal(0.0, Gauge);
    }

    [Fact]
    public async Task A_success_resets_the_consecutive_failure_count()
    {
        var (manager, _) = Build();
        for (var round = 0; round < 3; round++)
        {
            _healthy = false;
            await manager.DeliverAsync(Http(1), Origin(), default);
            await manager.DeliverAsync(Http(1), Origin(), default);
            _healthy = true;
            await manager.DeliverAsync(Http(1), Origin(), default);
        }
        Assert.Equal(0.0, Gauge);
        Assert.Equal(0, _metrics.SinkCircuitTrips.Value("http", "hook"));
    }

    [Fact]
    public async Task A_skipped_probe_frees_the_probe_slot()
    {
        var skip = true;
        var sink = new ScriptedSink("http", "hook") { Behavior = (_, _) => throw new SinkTransientException("down") };
        var manager = Manager([sink], _dlq, new SinkManagerOptions
        {
            Time = _clock,
            CircuitBreaker = new CircuitBreakerConfig { FailureThreshold = 1, CooldownSeconds = 30 },
            OnDeliveryError = _ => ValueTask.FromResult(skip ? DeliveryAction.Skip : DeliveryAction.Dlq),
        }, _metrics);
        skip = false;
        await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Equal(1.0, Gauge);
        _clock.Advance(TimeSpan.FromSeconds(30));
        skip = true;
        await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Equal(2, sink.Calls);

        await manager.DeliverAsync(Http(1), Origin(), default);
        Assert.Equal(3, sink.Calls);
    }

    [Fact]
    public void A_probe_that_never_reports_back_loses_its_slot_once_its_lease_runs_out()
    {
        var breaker = new CircuitBreaker(new CircuitBreakerConfig { FailureThreshold = 1, CooldownSeconds = 1 }, _clock, TimeSpan.FromSeconds(10),
            _metrics.SinkCircuitOpen.WithLabels("http", "hook"), _metrics.SinkCircuitTrips.WithLabels("http", "hook"));
        breaker.RecordFailure();
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(CircuitAdmission.Probe, breaker.Admit());

        // Its owner never records a verdict nor releases it: everyone else is turned away, but only for the lease.
        _clock.Advance(TimeSpan.FromSeconds(9.9));
        Assert.Equal(CircuitAdmission.Reject, breaker.Admit());
        Assert.True(breaker.IsTurningAway);
        _clock.Advance(TimeSpan.FromSeconds(0.2));
        Assert.False(breaker.IsTurningAway);
        Assert.Equal(CircuitAdmission.Probe, breaker.Admit());
        Assert.Equal(CircuitAdmission.Reject, breaker.Admit());
        breaker.RecordSuccess();
        Assert.Equal(CircuitAdmission.Deliver, breaker.Admit());
    }
}
