using System.Net.Sockets;
using Drakkar.Diagnostics.Recorder;
using Drakkar.Diagnostics.Ui;
using Drakkar.Observability.Metrics;
using Microsoft.Extensions.Logging;

namespace Drakkar.Diagnostics;

/// <summary>
/// What <c>debug.enabled</c> adds to a worker: the flight recorder (fed through <see cref="DrakkarMetrics.Events"/>,
/// which the consumer, the pipeline, the sinks and the committer call) and the debug web UI. Created before the worker's parts so that they report to it;
/// the UI's port is taken here too, so that a port in use stops the worker before it connects its sinks or joins the
/// consumer group (a worker that joined and then failed would cost the group two rebalances); the UI serves once the
/// parts exist.
/// </summary>
internal sealed partial class DebugConsole : IAsyncDisposable
{
    private readonly DrakkarConfig _config;
    private readonly string _workerId;
    private readonly ILogger _logger;
    private readonly DateTimeOffset _startedAt = DateTimeOffset.UtcNow;
    private TcpListener? _listener;
    private DebugServer? _server;
    private DebugJson? _json;

    private DebugConsole(DrakkarConfig config, string workerId, DrakkarMetrics metrics, ILoggerFactory loggers)
    {
        _config = config;
        _workerId = workerId;
        _logger = loggers.CreateLogger("Drakkar.Debug");
        var debug = config.Debug;
        var identity = (workerId, config.ClusterName, SecretMasker.Mask(debug.DebugUrl), DebugJson.EnvironmentJson(debug), SecretMasker.ToMaskedYaml(config));
        _listener = DebugServer.Listen(debug);
        Recorder = new FlightRecorder(debug, identity, () => _json?.State() ?? "{}", metrics, _logger, secrets: Sinks.SinkSecretMasker.For(config));
        try
        {
            Recorder.Start();
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
        metrics.Events = Recorder;
    }

    public FlightRecorder Recorder { get; }

    /// <summary>Where the UI listens, once started.</summary>
    public System.Net.IPEndPoint? Endpoint => _server?.LocalEndpoint;

    /// <summary>Starts the recorder and routes <paramref name="metrics"/>' events to it; null without <c>debug.enabled</c>.</summary>
    public static DebugConsole? Create(DrakkarConfig config, string workerId, DrakkarMetrics metrics, ILoggerFactory loggers) =>
        config.Debug.Enabled ? new DebugConsole(config, workerId, metrics, loggers) : null;

    /// <summary>Starts the UI over the running worker; with <paramref name="probe"/> it offers the probe action.</summary>
    public void StartUi(WorkerView worker, Probe.ProbeRunner? probe)
    {
        _json = new DebugJson(_config, _workerId, worker, Recorder, _startedAt);
        _server = DebugServer.Start(_listener!, _config.Debug, _json, probe, _logger);
        _listener = null;
        if (DebugServer.ExposureWarning(_config.Debug) is { } exposed) LogExposed(_logger, exposed);
        // Bound to every address (0.0.0.0, ::): the page's address names the machine, not the wildcard, while the
        // parenthesis says where the socket listens.
        var endpoint = _server.LocalEndpoint;
        var local = endpoint.Address.Equals(System.Net.IPAddress.Any) || endpoint.Address.Equals(System.Net.IPAddress.IPv6Any)
            ? $"http://{Environment.MachineName}:{endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}/"
            : $"http://{endpoint}/";
        LogListening(_logger, _config.Debug.DebugUrl.Length > 0 ? _config.Debug.DebugUrl : local, endpoint.ToString(),
            _config.Debug.AuthToken.Length > 0 ? "token required" : "no token", Recorder.DatabasePath ?? "none (memory only)");
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await Recorder.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Exposure}")]
    private static partial void LogExposed(ILogger logger, string exposure);

    [LoggerMessage(Level = LogLevel.Information, Message = "Debug UI at {Url} (listening on {Local}, {Auth}); flight recorder database: {Database}")]
    private static partial void LogListening(ILogger logger, string url, string local, string auth, string database);
}
