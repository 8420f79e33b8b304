using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Drakkar.Sinks;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Drakkar.Hosting;

/// <summary>Connects the configured sinks (all at once; any failure stops startup) and returns the delivery service.</summary>
internal static class DeliveryStartup
{
    public static async Task<(IPayloadDelivery Delivery, NpgsqlDataSource? Postgres)> ConnectAsync(DrakkarConfig config,
        DrakkarHandlerBase handler, DrakkarMetrics metrics, ILoggerFactory loggers, SinkRegistry plugins,
        ISinkBackpressureListener backpressure, CancellationToken cancellationToken)
    {
        var manager = SinkManager.ForHandler(handler, config, metrics, loggers, plugins, backpressure);
        await manager.StartAsync(cancellationToken).ConfigureAwait(false);
        return (manager, manager.PostgresDataSource);
    }
}

/// <summary>
/// Hands sink backpressure signals to the consumer, which exists only after the sinks are connected.
/// Signals that arrive before then are dropped: nothing is consumed yet, so there is nothing to rewind.
/// </summary>
internal sealed class BackpressureRelay : ISinkBackpressureListener
{
    public ISinkBackpressureListener? Target { get; set; }

    public void OnBackpressure(SinkBackpressure signal) => Target?.OnBackpressure(signal);
}
