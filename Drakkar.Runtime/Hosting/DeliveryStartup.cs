using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Drakkar.Hosting;

/// <summary>Connects the configured sinks and returns the delivery service the pipeline uses.</summary>
internal static class DeliveryStartup
{
    public static Task<(IPayloadDelivery Delivery, NpgsqlDataSource? Postgres)> ConnectAsync(DrakkarConfig config,
        DrakkarHandlerBase handler, DrakkarMetrics metrics, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        if (handler.DeclaredSinks.Count > 0)
            throw new InvalidOperationException(
                $"the handler declares sinks ({string.Join(", ", handler.DeclaredSinks.Select(s => s.ConfigPath))}) but this build has no sink delivery yet");
        return Task.FromResult<(IPayloadDelivery, NpgsqlDataSource?)>((new NoSinks(), null));
    }

    private sealed class NoSinks : IPayloadDelivery
    {
        public ValueTask DeliverAsync(CollectResult result, DeliveryOrigin origin, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("a hook returned payloads but no sinks are configured");

        public ValueTask DeadLetterAsync(DeliveryOrigin origin, string error, CancellationToken cancellationToken) =>
            throw new InvalidOperationException($"no dead letter queue is configured for: {error}");
    }
}
