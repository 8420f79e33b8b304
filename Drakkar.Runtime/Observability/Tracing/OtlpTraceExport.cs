using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Drakkar.Observability.Tracing;

/// <summary>
/// Sends the <c>Drakkar</c> source's spans to an OpenTelemetry collector over OTLP/HTTP (protobuf) when
/// <c>telemetry.traces</c> is on. The exporter batches spans in the background; disposing the provider at shutdown
/// exports what is left.
/// </summary>
internal static class OtlpTraceExport
{
    /// <summary>The running exporter, or null when <c>telemetry.traces</c> is off. Failed exports are said on <paramref name="logger"/> (<see cref="OtlpExportWatch"/>).</summary>
    public static TracerProvider? Start(TelemetryConfig telemetry, string workerId, string clusterName, ILogger logger)
    {
        if (!telemetry.Traces) return null;
        var serviceName = telemetry.ServiceName.Trim().Length > 0 ? telemetry.ServiceName.Trim() : workerId;
        var resource = ResourceBuilder.CreateEmpty().AddService(serviceName,
            serviceNamespace: clusterName.Length > 0 ? clusterName : null,
            serviceVersion: Hosting.DrakkarVersion.Text,
            autoGenerateServiceInstanceId: false, serviceInstanceId: workerId);
        return Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(resource)
            .AddSource(PipelineTracing.SourceName)
            .AddOtlpExporter(options =>
            {
                options.Protocol = OtlpExportProtocol.HttpProtobuf;
                // Set in code, the endpoint is used as given: the signal's path is ours to add.
                options.Endpoint = new Uri(telemetry.OtlpEndpoint.TrimEnd('/') + "/v1/traces");
                // The exporter's own client, but watched: a batch it cannot send is dropped silently otherwise.
                options.HttpClientFactory = () => new HttpClient(new OtlpExportWatch(logger, TimeProvider.System))
                {
                    Timeout = TimeSpan.FromMilliseconds(options.TimeoutMilliseconds),
                };
            })
            .Build();
    }
}
