using Drakkar.Kafka;
using Drakkar.Kafka.Embedded;
using Drakkar.Observability.Http;
using Drakkar.Observability.Logging;
using Drakkar.Observability.Metrics;
using Drakkar.Observability.Tracing;
using Drakkar.Pipeline;
using Drakkar.Sinks;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Drakkar.Hosting;

/// <summary>The parts a worker is composed of, chosen by the application (or by a test).</summary>
internal sealed class WorkerParts
{
    /// <summary>Runs task attempts; disposed at shutdown (which must leave no child process running).</summary>
    public required Func<DrakkarConfig, DrakkarMetrics, ILoggerFactory, ITaskExecutor> Executor { get; init; }

    /// <summary>Connects the sinks for the worker of the given id and returns the delivery service (and the first PostgreSQL data source, if any).</summary>
    public required Func<DrakkarConfig, DrakkarHandlerBase, string, DrakkarMetrics, ILoggerFactory, CancellationToken,
        Task<(IPayloadDelivery Delivery, NpgsqlDataSource? Postgres)>> Delivery { get; init; }

    /// <summary>Log destination; null builds one from <c>logging</c> config.</summary>
    public ILoggerFactory? Loggers { get; init; }

    /// <summary>
    /// Makes a fresh instance of the worker's handler (as the host made the worker's) for the debug UI's probe action;
    /// null: the UI offers no probe.
    /// </summary>
    public Func<DrakkarHandlerBase>? ProbeHandler { get; init; }
}

/// <summary>
/// A running worker: <c>OnStartup</c> → (embedded broker) → sinks connect → <c>OnReady</c> → periodic methods →
/// consume. <see cref="StopAsync"/> is the graceful shutdown of SPEC O8.
/// </summary>
public sealed partial class WorkerHost : IAsyncDisposable
{
    /// <summary>The <c>kafka.brokers</c> value that starts the in-process broker instead of connecting out.</summary>
    public const string EmbeddedBrokers = "embedded";

    /// <summary>Partitions the embedded broker gives the source topic.</summary>
    public const int EmbeddedPartitions = 4;

    private readonly DrakkarHandlerBase _handler;
    private readonly ILoggerFactory _loggers;
    private readonly bool _ownsLoggers;
    private readonly ILogger _logger;
    private SourceConsumer? _consumer;
    private PeriodicRunner? _periodic;
    private IdleMeter? _idle;
    private ITaskExecutor? _executor;
    private IPayloadDelivery? _delivery;
    private DrakkarCache? _cache;
    private OperationsEndpoint? _endpoint;
    private Diagnostics.DebugConsole? _debug;
    private OpenTelemetry.Trace.TracerProvider? _traces;
    private int _stopped;

    private WorkerHost(DrakkarHandlerBase handler, DrakkarConfig config, string workerId, ILoggerFactory loggers, bool ownsLoggers)
    {
        _handler = handler;
        Config = config;
        WorkerId = workerId;
        _loggers = loggers;
        _ownsLoggers = ownsLoggers;
        _logger = loggers.CreateLogger("Drakkar.Worker");
    }

    public DrakkarConfig Config { get; }
    public string WorkerId { get; }
    internal DrakkarMetrics Metrics { get; } = new();

    /// <summary>The in-process broker when <c>kafka.brokers</c> is <c>embedded</c>.</summary>
    internal EmbeddedKafkaBroker? EmbeddedBroker { get; private set; }

    /// <summary>Completes once the consumer has polled for the first time.</summary>
    public Task Ready => _consumer?.FirstPoll ?? Task.CompletedTask;

    public IReadOnlyCollection<int> AssignedPartitions => _consumer?.AssignedPartitions ?? [];

    /// <summary>
    /// Completes with the error when consumption ended on its own (not by <see cref="StopAsync"/>): the worker does
    /// nothing more and should be stopped and restarted (<c>run</c> and <c>AddDrakkar</c> do: exit 1).
    /// </summary>
    public Task<Exception> Failed => _consumer?.Failed ?? NeverFailed.Task;

    private static readonly TaskCompletionSource<Exception> NeverFailed = new();

    /// <summary>The running consumer, for tests.</summary>
    internal SourceConsumer? Consumer => _consumer;

    /// <summary>
    /// What <c>/readyz</c> answers (SPEC X2): ready once the consumer has polled, while every sink holds its
    /// connection, and until shutdown begins (so traffic moves elsewhere while this worker drains).
    /// </summary>
    public Readiness Readiness
    {
        get
        {
            var reasons = new List<string>();
            if (Volatile.Read(ref _stopped) == 1) reasons.Add("the worker is shutting down");
            if (_consumer is not { FirstPoll.IsCompletedSuccessfully: true }) reasons.Add("the consumer has not polled the source topic yet");
            if (_consumer?.Failed is { IsCompleted: true } failed) reasons.Add($"the consumer stopped after an unexpected error: {SecretMasker.Mask(failed.Result.Message)}");
            if (_delivery is SinkManager sinks)
                reasons.AddRange(sinks.NotReadyReasons);
            if (_delivery is { } delivery)
                foreach (var (_, reason) in delivery.BlockedPartitions) reasons.Add($"partition blocked: {reason}");
            return new Readiness(reasons.Count == 0, reasons);
        }
    }

    /// <summary>Where <c>/metrics</c>, <c>/healthz</c> and <c>/readyz</c> are served; null when <c>metrics.enabled</c> is false.</summary>
    public System.Net.IPEndPoint? MetricsEndpoint => _endpoint?.LocalEndpoint;

    /// <summary>The flight recorder and debug UI; null without <c>debug.enabled</c>.</summary>
    internal Diagnostics.DebugConsole? Debug => _debug;

    /// <summary>The sink delivery service (a <see cref="SinkManager"/> in production).</summary>
    internal IPayloadDelivery? Delivery => _delivery;

    /// <summary>The backpressure load (queued messages plus unfinished tasks).</summary>
    internal WorkerLoad? Load => _consumer?.Load;

    /// <summary>
    /// Starts a worker in this process on <paramref name="config"/> with the production parts (the process pool and the
    /// configured sinks): what <c>run</c> does, without the command line and signals. Meant for tests of a handler, for
    /// example on <c>kafka.brokers: embedded</c> (then <see cref="Config"/>'s <c>Kafka.Brokers</c> holds the in-process
    /// broker's address to produce input to). Stop it with <see cref="StopAsync"/> (drains and commits, then closes) or
    /// <c>await using</c> (gives work in flight up uncommitted, leaves the group within seconds, closes).
    /// </summary>
    public static Task<WorkerHost> StartAsync(DrakkarHandlerBase handler, DrakkarConfig config, SinkRegistry? sinks = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(config);
        return StartAsync(handler, config, WorkerIdentity.Resolve(config).WorkerId, DrakkarApp.DefaultParts(sinks), cancellationToken);
    }

    internal static async Task<WorkerHost> StartAsync(DrakkarHandlerBase handler, DrakkarConfig config, string workerId,
        WorkerParts parts, CancellationToken cancellationToken)
    {
        // The hooks take no token: a stop asked while one has not returned (a hung migration, say) stops waiting for it
        // rather than wait for good; nothing has been consumed yet, so nothing is lost.
        var given = config;
        config = await handler.OnStartup(config).AsTask().WaitAsync(cancellationToken).ConfigureAwait(false);
        // A logger made from the given configuration (a host's, before this) masks with its secrets: the sinks built from
        // the one OnStartup returned add theirs to the same masker.
        if (!ReferenceEquals(given, config)) Sinks.SinkSecretMasker.Share(given, config);
        var ownsLoggers = parts.Loggers is null;
        var loggers = parts.Loggers ?? DrakkarLoggerProvider.CreateFactory(config.Logging, new LogContext(workerId, config.Kafka.ConsumerGroup, config.ClusterName),
            Sinks.SinkSecretMasker.For(config));
        var host = new WorkerHost(handler, config, workerId, loggers, ownsLoggers);
        try
        {
            await host.StartPartsAsync(parts, cancellationToken).ConfigureAwait(false);
            return host;
        }
        catch
        {
            // A failed start leaves no flight recorder file: a worker restarted in a loop would add one per attempt.
            var recorderFile = host._debug?.Recorder.DatabasePath;
            await host.DisposeAsync().ConfigureAwait(false);
            if (recorderFile is not null) Storage.PrivateFiles.DeleteDatabase(recorderFile);
            throw;
        }
    }

    private async Task StartPartsAsync(WorkerParts parts, CancellationToken cancellationToken)
    {
        Metrics.Worker.Set(1, WorkerId, DrakkarVersion.Text, Config.Kafka.ConsumerGroup);
        _traces = OtlpTraceExport.Start(Config.Telemetry, WorkerId, Config.ClusterName, _loggers.CreateLogger("Drakkar.Tracing"));
        foreach (var advice in Configuration.ConfigAdvisories.Of(Config)) LogConfigAdvisory(advice);
        Execution.BinaryCheck.Require(Config.Executor.BinaryPath);
        if (string.Equals(Config.Kafka.Brokers, EmbeddedBrokers, StringComparison.OrdinalIgnoreCase))
        {
            EmbeddedBroker = EmbeddedKafkaBroker.Start();
            EmbeddedBroker.CreateTopic(Config.Kafka.SourceTopic, EmbeddedPartitions);
            Config.Kafka.Brokers = EmbeddedBroker.BootstrapServers;
            LogEmbeddedBroker(EmbeddedBroker.BootstrapServers, Config.Kafka.SourceTopic, EmbeddedPartitions);
            if (Config.Kafka.ExactlyOnce) LogExactlyOnceOnEmbedded();
        }
        _debug = Diagnostics.DebugConsole.Create(Config, WorkerId, Metrics, _loggers);
        // Both ports are taken before anything connects: a port in use stops the worker before it touches a sink or
        // the group. While the sinks connect, /healthz answers and /readyz says what is still missing.
        if (Config.Metrics.Enabled)
        {
            _endpoint = OperationsEndpoint.Start(Config.Metrics.Host, Config.Metrics.Port, Metrics.Registry.Export, () => Readiness,
                _loggers.CreateLogger("Drakkar.Metrics"));
        }
        // A cache directory it cannot use stops the worker before any sink connects, like a port in use.
        _cache = await DrakkarCache.OpenAsync(Config, WorkerId, logger: _loggers.CreateLogger("Drakkar.Cache"), cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        var (delivery, postgres) = await parts.Delivery(Config, _handler, WorkerId, Metrics, _loggers, cancellationToken).ConfigureAwait(false);
        _delivery = delivery;
        _executor = parts.Executor(Config, Metrics, _loggers);
        _handler.Cache = _cache;
        await _handler.OnReady(Config, postgres).AsTask().WaitAsync(cancellationToken).ConfigureAwait(false);
        _periodic = new PeriodicRunner([.. _handler.PeriodicMethods, .. _cache.BackgroundTasks], Metrics, _loggers.CreateLogger("Drakkar.Periodic"),
            TimeProvider.System);
        _periodic.Start();
        _consumer = new SourceConsumer(Config, WorkerId, _handler, _executor, _delivery, Metrics, _loggers);
        _consumer.Start();
        _idle = IdleMeter.Start(Metrics, _consumer.Load, Config.Executor.MaxExecutors);
        _debug?.StartUi(DebugView(), parts.ProbeHandler is { } probeHandler
            ? new Probe.ProbeRunner(probeHandler, Config, parts.Executor, _loggers)
            : null);
        _ = _consumer.FirstPoll.ContinueWith(_ => LogReady(WorkerId, Config.Kafka.SourceTopic), TaskScheduler.Default);
    }

    /// <summary>Graceful shutdown: periodic methods first, then drain and commit, then close executors and sinks.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1) return;
        LogStopping(Config.Executor.DrainTimeoutSeconds);
        // drain_timeout_seconds bounds the whole stop: periodic methods, drain, commit, leave, and closing the parts.
        var bound = TimeSpan.FromSeconds(Config.Executor.DrainTimeoutSeconds);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // Periodic methods get at most a quarter of the bound, so one that ignores its token leaves the drain its share.
        var periodicShare = bound / 4;
        await StopPeriodicAsync(periodicShare < PeriodicRunner.StopPatience ? periodicShare : PeriodicRunner.StopPatience).ConfigureAwait(false);
        if (_consumer is not null) await _consumer.StopAsync(bound - clock.Elapsed).ConfigureAwait(false);
        // Taken before DisposeAsync lets go of it.
        var executor = _executor as Execution.ExecutorPool;
        var closing = DisposeAsync().AsTask();
        var left = bound - clock.Elapsed;
        if (await Task.WhenAny(closing, Task.Delay(left > TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1))).ConfigureAwait(false) != closing)
        {
            // Out of time: the executor's processes (a persistent one waiting out its exit grace, say) are killed now
            // rather than outlive the worker; a kill and its reaping take milliseconds.
            if (executor is not null) await Task.WhenAny(executor.EndNowAsync(), Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
            LogStopOverran(clock.Elapsed.TotalSeconds);
            return;
        }
        LogStopped();
    }

    public async ValueTask DisposeAsync()
    {
        await StopPeriodicAsync(PeriodicRunner.StopPatience).ConfigureAwait(false);
        if (_idle is not null) await _idle.DisposeAsync().ConfigureAwait(false);
        _idle = null;
        if (_consumer is not null) await _consumer.DisposeAsync().ConfigureAwait(false);
        _consumer = null;
        await DisposePartAsync(_executor).ConfigureAwait(false);
        _executor = null;
        // After the last hook ran: the final flush keeps every write the handler made.
        await DisposePartAsync(_cache).ConfigureAwait(false);
        _cache = null;
        _handler.Cache = DrakkarCache.Disabled;
        await DisposePartAsync(_delivery).ConfigureAwait(false);
        _delivery = null;
        // Last of the parts: probes keep answering (503, shutting down) while the worker drains.
        await DisposePartAsync(_endpoint).ConfigureAwait(false);
        _endpoint = null;
        await DisposePartAsync(_debug).ConfigureAwait(false);
        _debug = null;
        EmbeddedBroker?.Dispose();
        EmbeddedBroker = null;
        // After the sinks closed, so every delivery span has ended: disposing exports the spans still buffered.
        await DisposePartAsync(_traces).ConfigureAwait(false);
        _traces = null;
        Metrics.Dispose();
        if (_ownsLoggers) _loggers.Dispose();
    }

    /// <summary>What the debug UI reads from this worker.</summary>
    private Diagnostics.Ui.WorkerView DebugView() => new(
        () => _consumer?.Partitions ?? [],
        () =>
        {
            var pool = _executor as Execution.ExecutorPool;
            var load = _consumer?.Load;
            return new Diagnostics.Ui.ExecutorView(pool?.MaxExecutors ?? Config.Executor.MaxExecutors, pool?.ActiveCount ?? 0, pool?.WaitingCount ?? 0,
                load?.Current ?? 0, load?.High ?? 0, load?.Paused ?? false,
                _delivery?.InFlightPayloads ?? 0, _delivery?.HoldingForOutage ?? false);
        },
        () => (_delivery as SinkManager)?.Stats ?? [],
        () => Readiness);

    private async ValueTask StopPeriodicAsync(TimeSpan patience)
    {
        if (_periodic is null) return;
        await _periodic.StopAsync(patience).ConfigureAwait(false);
        _periodic = null;
    }

    private async ValueTask DisposePartAsync(object? part)
    {
        try
        {
            switch (part)
            {
                case IAsyncDisposable asyncDisposable: await asyncDisposable.DisposeAsync().ConfigureAwait(false); break;
                case IDisposable disposable: disposable.Dispose(); break;
            }
        }
        catch (Exception e)
        {
            // Close errors are logged, never thrown: shutdown must finish.
            LogCloseFailed(e, part!.GetType().Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedded Kafka broker at {Bootstrap}; topic {Topic} with {Partitions} partitions")]
    private partial void LogEmbeddedBroker(string bootstrap, string topic, int partitions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "kafka.exactly_once on the embedded broker runs the transactions, but its mock cluster keeps no offsets sent in a transaction and shows aborted records to read_committed readers: a restarted worker starts over and its output has duplicates. Exactly-once holds on a Kafka broker (docs/semantics.md, O12)")]
    private partial void LogExactlyOnceOnEmbedded();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Configuration: {Advice}")]
    private partial void LogConfigAdvisory(string advice);

    [LoggerMessage(Level = LogLevel.Information, Message = "Worker {WorkerId} is ready: consuming {Topic}")]
    private partial void LogReady(string workerId, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopping: draining partitions (the whole stop takes up to {Seconds}s, drain_timeout_seconds; the drains get it less a reserve for the commit)")]
    private partial void LogStopping(int seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stopped after {Seconds:0.0}s with parts still closing (sinks or executors did not finish within the drain bound)")]
    private partial void LogStopOverran(double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopped")]
    private partial void LogStopped();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closing {Part} failed")]
    private partial void LogCloseFailed(Exception error, string part);
}
