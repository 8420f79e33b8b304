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
        DrakkarHandlerBase handler, string workerId, DrakkarMetrics metrics, ILoggerFactory loggers, SinkRegistry registry, CancellationToken cancellationToken)
    {
        var manager = SinkManager.ForHandler(handler, config, metrics, loggers, registry, workerId);
        await manager.StartAsync(cancellationToken).ConfigureAwait(false);
        return (manager, manager.PostgresDataSource);
    }
}
