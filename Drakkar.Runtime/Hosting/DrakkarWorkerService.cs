using Drakkar.Sinks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Drakkar.Hosting;

/// <summary>What <c>AddDrakkar</c> was given, for <see cref="DrakkarApp"/>.</summary>
/// <param name="Options">The options given to <c>AddDrakkar</c>.</param>
/// <param name="OnDefaultConfig">No file was found, so the worker runs on <see cref="DrakkarAppOptions.DefaultConfig"/>.</param>
internal sealed record DrakkarWorkerSetup(DrakkarAppOptions Options, bool OnDefaultConfig);

/// <summary>The worker as a hosted service: starts with the host, drains when the host stops (SPEC O8).</summary>
internal sealed partial class DrakkarWorkerService : IHostedService
{
    private readonly DrakkarHandlerBase _handler;
    private readonly DrakkarConfig _config;
    private readonly WorkerIdentity _identity;
    private readonly ILoggerFactory _loggers;
    private readonly SinkRegistry _sinks;
    private readonly Func<DrakkarHandlerBase> _probeHandler;
    private readonly IHostApplicationLifetime? _lifetime;

    public DrakkarWorkerService(DrakkarHandlerBase handler, DrakkarConfig config, WorkerIdentity identity, ILoggerFactory loggers, SinkRegistry sinks,
        Func<DrakkarHandlerBase> probeHandler, IHostApplicationLifetime? lifetime = null)
    {
        _lifetime = lifetime;
        _probeHandler = probeHandler;
        _handler = handler;
        _config = config;
        _identity = identity;
        _loggers = loggers;
        _sinks = sinks;
    }

    /// <summary>The running worker once the host has started.</summary>
    public WorkerHost? Worker { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // A sink the handler declares that the configuration does not serve (or a configured kind with no
        // implementation) is a configuration mistake: DrakkarApp reports it before anything starts, with exit 2. On a host
        // of your own it is caught here, as a ConfigException, before any port opens or anything connects.
        var problems = SinkRegistry.DeclarationProblems(_config, _handler.DeclaredSinks).Concat(_sinks.RegistrationProblems(_config))
            .Select(problem => new ConfigProblem("", problem)).ToList();
        if (problems.Count > 0) throw new ConfigException(problems);
        try
        {
            Worker = await WorkerHost.StartAsync(_handler, _config, _identity.WorkerId, DrakkarApp.DefaultParts(_sinks, _loggers, _probeHandler), cancellationToken)
                .ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_lifetime?.ApplicationStopping.IsCancellationRequested == true)
        {
            // A stop signal before the worker was ready (OnStartup or OnReady had not returned; they take no token):
            // what had started is closed and nothing was consumed. The start ends normally, so the host goes on to its
            // ordinary stop (exit 0), on DrakkarApp and on a host of the application's own alike.
            LogStoppedDuringStart(_loggers.CreateLogger("Drakkar.Worker"));
            return;
        }
        // A worker whose consumption ended on its own does nothing more: the host stops, with exit code 1, so that an
        // orchestrator restarts it rather than keep a process that looks alive.
        _ = Worker.Failed.ContinueWith(static (_, state) =>
        {
            Environment.ExitCode = DrakkarApp.ExitFailure;
            ((IHostApplicationLifetime?)state)?.StopApplication();
        }, _lifetime, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stopped during start-up: the stop was asked before the worker was ready (OnStartup or OnReady had not returned, and is no longer waited for); nothing was consumed")]
    private static partial void LogStoppedDuringStart(ILogger logger);

    // The stop is bounded by executor.drain_timeout_seconds inside WorkerHost, not by the host's shutdown timeout.
    public Task StopAsync(CancellationToken cancellationToken) => Worker?.StopAsync() ?? Task.CompletedTask;
}
