using Microsoft.Extensions.Logging;

namespace Drakkar.Observability.Tracing;

/// <summary>
/// Sits under the OTLP exporter's HTTP client and says when spans stop reaching the collector, and when they reach
/// it again: the exporter itself drops a failed batch without a word, so a collector that is down looked the same as
/// tracing being off. The first failure is a warning at once; while failures go on, one line a minute counts them.
/// </summary>
internal sealed partial class OtlpExportWatch(ILogger logger, TimeProvider time) : DelegatingHandler(new SocketsHttpHandler())
{
    /// <summary>How often a run of failures is logged again (with how many there were).</summary>
    internal static readonly TimeSpan RepeatEvery = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private int _failedSinceLine;
    private bool _failing;
    private DateTimeOffset _lastLine;

    // The exporter sends synchronously from its export thread (HttpClient.Send); the asynchronous path is watched too.
    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            return Observed(request, base.Send(request, cancellationToken));
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            Failed(request, Reason(e));
            throw;
        }
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            return Observed(request, await base.SendAsync(request, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            Failed(request, Reason(e));
            throw;
        }
    }

    private static string Reason(Exception e) => e is OperationCanceledException ? "no answer within the exporter's timeout" : e.Message;

    private HttpResponseMessage Observed(HttpRequestMessage request, HttpResponseMessage response)
    {
        if (response.IsSuccessStatusCode) Succeeded(request);
        else Failed(request, $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
        return response;
    }

    private void Failed(HttpRequestMessage request, string reason)
    {
        int count;
        lock (_gate)
        {
            _failedSinceLine++;
            var now = time.GetUtcNow();
            if (_failing && now - _lastLine < RepeatEvery) return;
            count = _failedSinceLine;
            _failedSinceLine = 0;
            _failing = true;
            _lastLine = now;
        }
        LogExportFailing(logger, request.RequestUri?.ToString() ?? "", reason, count);
    }

    private void Succeeded(HttpRequestMessage request)
    {
        int missed;
        lock (_gate)
        {
            if (!_failing) return;
            missed = _failedSinceLine;
            _failing = false;
            _failedSinceLine = 0;
        }
        LogExportBack(logger, request.RequestUri?.ToString() ?? "", missed);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Spans cannot be exported to {Endpoint} (telemetry.otlp_endpoint): {Reason}; the batch is dropped ({Count} failed export(s) since the last such line); tracing goes on and exports again once the collector answers")]
    private static partial void LogExportFailing(ILogger logger, string endpoint, string reason, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Spans reach {Endpoint} again ({Missed} more failed export(s) since the last warning)")]
    private static partial void LogExportBack(ILogger logger, string endpoint, int missed);
}
