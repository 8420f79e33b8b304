using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Sinks.Http;

/// <summary>
/// One JSON request per payload to the configured URL. Any non-2xx answer is a failure that carries the status and an
/// excerpt of the body; redirects are never followed (a 3xx is a failure naming it), so headers and payloads only ever
/// go to the configured host. Where it may connect is <see cref="HttpEgress"/>'s rule. Answers are read in bounded
/// amounts: the first 4 KiB of an error body for the excerpt, and at most 64 KiB of a success body (drained so the
/// connection can be reused; a longer one closes the connection). Not idempotent: a POST may have side effects, so
/// the sink retries a request itself (<c>max_retries</c>) only when it was never sent, or when its
/// <c>Idempotency-Key</c> lets the receiver drop a repeat.
/// </summary>
internal sealed partial class HttpSink : ISink
{
    private const int BodyExcerptBytes = 4 * 1024;
    private const int DrainLimitBytes = 64 * 1024;
    private static readonly MediaTypeHeaderValue Json = new("application/json") { CharSet = "utf-8" };

    /// <summary>The pause before the first retry of a request; it doubles for each further one, up to <see cref="MaxBackoff"/>.</summary>
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100), MaxBackoff = TimeSpan.FromSeconds(2);

    /// <summary>The longest wait a receiver's <c>Retry-After</c> is honoured for; a longer one is cut to this.</summary>
    internal static readonly TimeSpan MaxRetryAfter = TimeSpan.FromMinutes(5);

    /// <summary>The longest a connect may take: half the request's timeout, at most 10 s, so it fails as a connect failure first.</summary>
    private static readonly TimeSpan MaxConnectTimeout = TimeSpan.FromSeconds(10);

    private readonly Uri _url;
    private readonly HttpMethod _method;
    private readonly TimeSpan _timeout;
    private readonly KeyValuePair<string, string>[] _headers;
    private readonly HttpEgress _egress;
    private readonly int _maxRetries;
    private readonly int _maxConnections;
    // One slot per request in flight, shared by every delivery of the instance (batches, isolation, probes).
    private readonly SemaphoreSlim _inFlight;
    // The consumer group the Idempotency-Key is scoped to; null when idempotency_key is off.
    private readonly string? _keyScope;
    private readonly SinkSecretMasker _masker;
    private readonly ILogger _logger;
    private HttpClient? _client;
    // A 429 or 503 with Retry-After: no request of the instance goes out before this time (UTC ticks; 0 when none).
    private long _notBeforeTicks;

    internal HttpSink(string name, HttpSinkConfig config, SinkSecretMasker masker, Func<string, string?>? environment = null,
        Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null, string consumerGroup = "", ILogger? logger = null)
    {
        Name = name;
        var path = $"sinks.http.{name}";
        _url = ValidateUrl(config.Url, path);
        masker.AddCredentialsOf(config.Url);
        _masker = masker;
        _logger = logger ?? NullLogger.Instance;
        _method = new HttpMethod(string.IsNullOrWhiteSpace(config.Method) ? "POST" : config.Method.Trim().ToUpperInvariant());
        if (config.TimeoutSeconds <= 0) throw new SinkConfigurationException($"{path}.timeout_seconds must be positive, got {config.TimeoutSeconds}.");
        if (config.MaxConnections <= 0) throw new SinkConfigurationException($"{path}.max_connections must be positive, got {config.MaxConnections}.");
        if (config.MaxRetries < 0) throw new SinkConfigurationException($"{path}.max_retries must be ≥ 0, got {config.MaxRetries}.");
        _timeout = TimeSpan.FromSeconds(config.TimeoutSeconds);
        _maxRetries = config.MaxRetries;
        _maxConnections = config.MaxConnections;
        _inFlight = new SemaphoreSlim(config.MaxConnections);
        _keyScope = config.IdempotencyKey ? consumerGroup : null;
        _egress = new HttpEgress(name, config.AllowLoopback, _timeout / 2 < MaxConnectTimeout ? _timeout / 2 : MaxConnectTimeout, resolve);
        environment ??= Environment.GetEnvironmentVariable;
        _headers = [.. config.Headers.Select(h => new KeyValuePair<string, string>(h.Key, Expand(h.Value, environment, $"{path}.headers.{h.Key}")))];
        // Credentials travel in headers; their values must never reach a log or the DLQ. Ordinary headers stay
        // readable (masking a value like "search" would garble every message that mentions it).
        foreach (var (key, value) in _headers)
        {
            if (!SecretMasker.IsSecretName(key)) continue;
            masker.Add(value);
            var space = value.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0) masker.Add(value[(space + 1)..]);
        }
    }

    public string Kind => "http";
    public string Name { get; }
    public bool IsIdempotent => false;
    public bool IsConnected => _client is not null;

    public ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        _client = NewClient(reuseConnections: Volatile.Read(ref _oneRequestPerConnection) == 0);
        return ValueTask.CompletedTask;
    }

    /// <summary>Whether <paramref name="client"/> keeps connections for the next request (every client but the one made by <see cref="StopReusingConnections"/>).</summary>
    private bool ReusesConnections(HttpClient client) => !ReferenceEquals(client, Volatile.Read(ref _perRequestClient));

    // The client that opens a connection per request, once the receiver showed it closes each one (null before).
    private HttpClient? _perRequestClient;

    private HttpClient NewClient(bool reuseConnections)
    {
        var client = NewClientCore(reuseConnections);
        if (!reuseConnections) Volatile.Write(ref _perRequestClient, client);
        return client;
    }

    private HttpClient NewClientCore(bool reuseConnections) => new(new SocketsHttpHandler
    {
        // Zero: every connection is closed after its request (a receiver that closes each connection itself).
        PooledConnectionLifetime = reuseConnections ? TimeSpan.FromMinutes(5) : TimeSpan.Zero,
        // As many connections as requests in flight: a request that holds a slot never queues for a connection.
        MaxConnectionsPerServer = _maxConnections,
        AllowAutoRedirect = false,
        ConnectCallback = _egress.ConnectAsync,
    })
    {
        Timeout = _timeout,
    };

    // 1 once the receiver showed it closes each connection after its answer (see StopReusingConnections).
    private int _oneRequestPerConnection;
    // Clients replaced while requests may still be in flight on them: disposed at close.
    private readonly System.Collections.Concurrent.ConcurrentBag<HttpClient> _retired = [];

    /// <summary>
    /// An HTTP/1.0 answer without <c>Connection: keep-alive</c> (Python's <c>http.server</c>, many small webhooks) means
    /// the receiver closes the connection after it. HttpClient keeps such a connection for the next request anyway,
    /// which then fails with "The response ended prematurely" once the close arrives, without having reached the
    /// receiver: against such a receiver about one request in three failed, and the sink kept opening its circuit. From
    /// the first such answer on, the instance opens a connection per request.
    /// </summary>
    private void StopReusingConnections()
    {
        if (Interlocked.Exchange(ref _oneRequestPerConnection, 1) == 1) return;
        LogNoKeepAlive(_logger, Name, _url.GetLeftPart(UriPartial.Authority));
        // Not after a close (no client then): the next ConnectAsync builds the client without reuse.
        if (Volatile.Read(ref _client) is not { } current) return;
        var replacement = NewClient(reuseConnections: false);
        if (Interlocked.CompareExchange(ref _client, replacement, current) == current) _retired.Add(current);
        else replacement.Dispose();
    }

    private static bool ClosesAfterAnswer(HttpResponseMessage response) =>
        response.Version < System.Net.HttpVersion.Version11
            && !response.Headers.Connection.Contains("keep-alive", StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Sends the batch's requests, at most <c>max_connections</c> at once across every delivery of the instance. Each
    /// payload's outcome is its own: failed ones are reported with <see cref="SinkBatch.Fail"/>, so only their hook
    /// calls take the failure path and nothing is sent again beyond this sink's own retries. That holds when every
    /// request failed too: thrown, the batch's failure made the engine deliver each hook call's payloads again on their
    /// own, so requests that may have reached the receiver (a timeout) were sent twice, without an Idempotency-Key.
    /// </summary>
    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var client = _client ?? throw new SinkTransientException($"http sink '{Name}' is not connected");
        // The receiver asked for a pause: nothing is sent before it ends; the engine waits and delivers the batch again.
        if (Throttled() is { } pause) throw pause;
        var failures = new Exception?[batch.Count];
        var next = -1;
        async Task SendAllAsync()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < batch.Count)
                failures[i] = await SendWithRetriesAsync(client, batch, i, cancellationToken).ConfigureAwait(false);
        }
        var senders = Math.Min(_maxConnections, batch.Count);
        await (senders == 1 ? SendAllAsync() : Task.WhenAll(Enumerable.Range(0, senders).Select(_ => SendAllAsync()))).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        // Every request throttled (429 or 503 with Retry-After) and none taken: the whole batch waits, as asked, and
        // nothing is sent twice. Otherwise the throttled payloads fail like any transient failure, and their next
        // delivery waits out the same pause above.
        if (Array.TrueForAll(failures, f => f is HttpSinkException { RetryAfter: not null }) && Throttled() is { } throttled) throw throttled;
        for (var i = 0; i < failures.Length; i++)
            if (failures[i] is { } failure) batch.Fail(i, failure);
    }

    /// <summary>The pause a receiver's Retry-After still imposes, as the engine's "slow down"; null when none is left.</summary>
    private SinkBackpressureException? Throttled()
    {
        var left = new DateTime(Interlocked.Read(ref _notBeforeTicks), DateTimeKind.Utc) - DateTime.UtcNow;
        return left > TimeSpan.Zero
            ? new SinkBackpressureException(left, $"HTTP sink '{Name}': the receiver asked for no requests for another " +
                $"{left.TotalSeconds.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture)}s (Retry-After)")
            : null;
    }

    /// <summary>Records a receiver's Retry-After (at most <see cref="MaxRetryAfter"/>); a later end replaces an earlier one.</summary>
    private TimeSpan? HonourRetryAfter(HttpResponseMessage response)
    {
        var now = DateTime.UtcNow;
        var wait = response.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date.UtcDateTime - now,
            _ => (TimeSpan?)null,
        };
        if (wait is not { } w) return null;
        w = w < TimeSpan.Zero ? TimeSpan.Zero : w > MaxRetryAfter ? MaxRetryAfter : w;
        var until = (now + w).Ticks;
        for (var seen = Interlocked.Read(ref _notBeforeTicks); until > seen; seen = Interlocked.Read(ref _notBeforeTicks))
            if (Interlocked.CompareExchange(ref _notBeforeTicks, until, seen) == seen) break;
        return w;
    }

    /// <summary>
    /// One payload: its request, sent again after a transient failure (up to <c>max_retries</c> times, with backoff)
    /// when that cannot make the receiver act twice: the request was never sent, or it carries an Idempotency-Key.
    /// Returns why it failed in the end, or null when the endpoint took it.
    /// </summary>
    private async Task<Exception?> SendWithRetriesAsync(HttpClient client, SinkBatch batch, int i, CancellationToken cancellationToken)
    {
        byte[] body;
        try
        {
            body = batch.Payloads[i].Data.ToJsonBytes();
        }
        catch (Exception e) when (PayloadData.IsUnwritable(e))
        {
            // A payload whose data has no JSON form: its own failure, and no retry can change it.
            return SinkDeliveryException.Unwritable(batch, i, "JSON", e);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return e;
        }
        var key = _keyScope is not null && batch.SourceOf(i) is { } source ? IdempotencyKey.Of(_keyScope, Name, source) : null;
        var backoff = FirstBackoff;
        for (var attempt = 1; ; attempt++)
        {
            var (failure, sent) = await SendAsync(client, body, key, (i, batch.Count), cancellationToken).ConfigureAwait(false);
            if (failure is null) return null;
            // A receiver that said when to come back is not asked again sooner.
            if (failure is HttpSinkException { RetryAfter: not null }) return failure;
            if (attempt > _maxRetries || (sent && key is null) || !TransientErrors.IsTransient(failure))
                return attempt == 1 ? failure : new SinkTransientException($"{failure.Message} (after {attempt} attempts, max_retries: {_maxRetries})", failure);
            LogRetry(_logger, Name, i + 1, batch.Count, attempt, backoff.TotalMilliseconds, sent ? "sent, with an Idempotency-Key" : "never sent",
                _masker.Apply(failure.Message));
            await Task.Delay(backoff, cancellationToken).ConfigureAwait(false);
            backoff = backoff * 2 < MaxBackoff ? backoff * 2 : MaxBackoff;
        }
    }

    /// <summary>What a failure names: the request and the payload's place in its batch.</summary>
    private string Where((int Index, int Of) payload) => $"{_method} {_url.GetLeftPart(UriPartial.Path)} (payload {payload.Index + 1} of {payload.Of})";

    /// <summary>
    /// One request, holding one of the instance's <c>max_connections</c> slots. Returns why it failed (null when the
    /// endpoint took it) and whether it may have been sent: false only when no connection could be opened for it
    /// (<see cref="HttpConnectException"/> from <see cref="HttpEgress.ConnectAsync"/>, which HttpClient hands to the
    /// request that waited for that connection), so not one byte of it was written. <c>payload</c> (which of how many
    /// in the batch) is only formatted into a failure's text.
    /// </summary>
    private async Task<(Exception? Failure, bool Sent)> SendAsync(HttpClient client, byte[] body, string? key, (int Index, int Of) payload,
        CancellationToken cancellationToken)
    {
        await _inFlight.WaitAsync(cancellationToken).ConfigureAwait(false);
        // The instance's client now: replaced (StopReusingConnections) while this batch ran, the new one is used.
        client = Volatile.Read(ref _client) ?? client;
        try
        {
            using var request = new HttpRequestMessage(_method, _url);
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = Json;
            request.Content = content;
            foreach (var (name, value) in _headers)
            {
                if (!request.Headers.TryAddWithoutValidation(name, value)) content.Headers.TryAddWithoutValidation(name, value);
            }
            if (key is not null) request.Headers.TryAddWithoutValidation(IdempotencyKey.Header, key);
            // HttpClient.Timeout covers the request up to the response headers; the same limit bounds reading the body.
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(_timeout);
            HttpResponseMessage response;
            try
            {
                response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (e.InnerException is HttpEgressRefusedException refused)
            {
                return (new HttpEgressRefusedException(refused.Message), false);
            }
            catch (HttpRequestException e) when (e.InnerException is HttpConnectException)
            {
                return (e, false);
            }
            catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.ResponseEnded && ReusesConnections(client))
            {
                // A kept connection that ended without a byte of answer. Against a receiver that closes each connection
                // after its answer (HTTP/1.0) the request went out on a connection the receiver had already closed, so
                // it never read it: it may be sent again. That receiver is flagged by another request's answer, whose
                // handling can run just after this failure (the connection went back to the pool first): wait briefly.
                for (var wait = 0; wait < 20 && Volatile.Read(ref _oneRequestPerConnection) == 0; wait++)
                    await Task.Delay(5, cancellationToken).ConfigureAwait(false);
                return (e, Volatile.Read(ref _oneRequestPerConnection) == 0);
            }
            using (response)
            {
                if (ClosesAfterAnswer(response)) StopReusingConnections();
                var status = (int)response.StatusCode;
                if (response.IsSuccessStatusCode)
                {
                    await ReadBoundedAsync(response, DrainLimitBytes, deadline.Token).ConfigureAwait(false);
                    return (null, true);
                }
                var (excerpt, truncated) = await ReadBoundedAsync(response, BodyExcerptBytes, deadline.Token).ConfigureAwait(false);
                var text = Encoding.UTF8.GetString(excerpt) + (truncated ? "…" : "");
                var redirect = status is >= 300 and < 400
                    ? $"redirects are not followed (Location: {SinkSecretMasker.Url(response.Headers.Location?.ToString() ?? "none")}); "
                    : "";
                // A 429 or 503 may say when to come back (Retry-After): honoured for the whole instance.
                var retryAfter = status is 429 or 503 ? HonourRetryAfter(response) : null;
                var after = retryAfter is { } r ? $" (Retry-After: {r.TotalSeconds.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture)}s)" : "";
                // Throttling and server errors may pass; a 3xx or 4xx says the request itself is wrong.
                return (new HttpSinkException(status, text, $"HTTP {status} {response.ReasonPhrase}{after} from {Where(payload)}: {redirect}{text}",
                    transient: status is >= 500 or 408 or 429) { RetryAfter = retryAfter }, true);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException)
        {
            // Not the caller's cancellation: the request's own deadline passed (it surfaced as "The operation was canceled").
            // Without the cancellation as its cause: "The operation was canceled" only blurred the line it ended up in.
            return (new TimeoutException($"{Where(payload)} timed out after " +
                $"{_timeout.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}s (timeout_seconds)"), true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The connection failed after the request may have gone out (reset, answer cut short).
            return (e, true);
        }
        finally
        {
            _inFlight.Release();
        }
    }

    /// <summary>
    /// Reads at most <paramref name="limit"/> bytes of the body; <c>truncated</c> says more was there. The rest is
    /// never read: disposing the response closes such a connection instead of returning it to the pool.
    /// </summary>
    private static async Task<(byte[] Bytes, bool Truncated)> ReadBoundedAsync(HttpResponseMessage response, int limit, CancellationToken cancellationToken)
    {
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            // Pooled: a success body is drained with a 64 KiB limit on every request, and a fresh 64 KiB array per
            // request (zeroed, and a collection every hundred or so requests) cost more than the request itself.
            var buffer = ArrayPool<byte>.Shared.Rent(limit + 1);
            try
            {
                var length = 0;
                while (length <= limit)
                {
                    var read = await stream.ReadAsync(buffer.AsMemory(length, limit + 1 - length), cancellationToken).ConfigureAwait(false);
                    if (read == 0) break;
                    length += read;
                }
                return length > limit ? (buffer[..limit], true) : (buffer[..length], false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _client, null)?.Dispose();
        while (_retired.TryTake(out var retired)) retired.Dispose();
        return ValueTask.CompletedTask;
    }

    private static Uri ValidateUrl(string url, string path)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.Host.Length == 0)
            throw new SinkConfigurationException($"{path}.url must be an http(s) URL with a host, got '{SinkSecretMasker.Url(url)}'.");
        if (HttpEgress.RefusedHost(uri) is { } host)
            throw new SinkConfigurationException(
                $"{path}.url points at the cloud metadata endpoint {host} (metadata and link-local hosts are refused so instance credentials cannot leak).");
        return uri;
    }

    /// <summary>Expands <c>${NAME}</c> and <c>${NAME:-default}</c> in a header value; an unset variable without default is an error naming it.</summary>
    internal static string Expand(string value, Func<string, string?> environment, string path) =>
        Variable().Replace(value, m =>
        {
            var name = m.Groups["name"].Value;
            var found = environment(name);
            if (!string.IsNullOrEmpty(found)) return found;
            if (m.Groups["default"].Success) return m.Groups["default"].Value;
            throw new SinkConfigurationException($"{path} uses ${{{name}}}, but the environment variable {name} is not set.");
        });

    [GeneratedRegex(@"\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?<default>[^}]*))?\}")]
    private static partial Regex Variable();

    [LoggerMessage(Level = LogLevel.Information, Message = "HTTP sink {SinkName}: {Receiver} answers HTTP/1.0 and closes the connection after each answer; one connection per request from now on")]
    private static partial void LogNoKeepAlive(ILogger logger, string sinkName, string receiver);

    [LoggerMessage(Level = LogLevel.Debug, Message = "HTTP sink {SinkName}: payload {Payload} of {Count} failed on attempt {Attempt} ({Sent}); trying again in {BackoffMs} ms: {Error}")]
    private static partial void LogRetry(ILogger logger, string sinkName, int payload, int count, int attempt, double backoffMs, string sent, string error);
}

/// <summary>The endpoint answered with a non-2xx status.</summary>
public sealed class HttpSinkException(int status, string bodyExcerpt, string message, bool transient) : SinkDeliveryException(message)
{
    public int Status { get; } = status;
    public string BodyExcerpt { get; } = bodyExcerpt;
    public bool IsTransient { get; } = transient;

    /// <summary>The wait a 429 or 503 asked for with <c>Retry-After</c> (at most 5 minutes); null when it named none.</summary>
    public TimeSpan? RetryAfter { get; init; }
}
