using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;

namespace Drakkar.Sinks.Http;

/// <summary>
/// One JSON request per payload to the configured URL, in batch order, stopping at the first failure.
/// Any non-2xx answer is a failure that carries the status and an excerpt of the body; redirects are never followed
/// (a 3xx is a failure naming it), so headers and payloads only ever go to the configured host. Where it may connect
/// is <see cref="HttpEgress"/>'s rule. Answers are read in bounded amounts: the first 4 KiB of an error body for the
/// excerpt, and at most 64 KiB of a success body (drained so the connection can be reused; a longer one closes the
/// connection). Not idempotent: a POST may have side effects.
/// </summary>
public sealed partial class HttpSink : ISink
{
    private const int BodyExcerptBytes = 4 * 1024;
    private const int DrainLimitBytes = 64 * 1024;
    private static readonly MediaTypeHeaderValue Json = new("application/json") { CharSet = "utf-8" };

    private readonly Uri _url;
    private readonly HttpMethod _method;
    private readonly TimeSpan _timeout;
    private readonly KeyValuePair<string, string>[] _headers;
    private readonly HttpEgress _egress;
    private HttpClient? _client;

    internal HttpSink(string name, HttpSinkConfig config, SinkSecretMasker masker, Func<string, string?>? environment = null,
        Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null)
    {
        Name = name;
        var path = $"sinks.http.{name}";
        _url = ValidateUrl(config.Url, path);
        masker.AddCredentialsOf(config.Url);
        _method = new HttpMethod(string.IsNullOrWhiteSpace(config.Method) ? "POST" : config.Method.Trim().ToUpperInvariant());
        if (config.TimeoutSeconds <= 0) throw new SinkConfigurationException($"{path}.timeout_seconds must be positive, got {config.TimeoutSeconds}.");
        _timeout = TimeSpan.FromSeconds(config.TimeoutSeconds);
        _egress = new HttpEgress(name, config.AllowLoopback, resolve);
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

    /// <summary>Requests of one batch in flight at once, and connections kept to the endpoint.</summary>
    public const int MaxConcurrentRequests = 8;

    public ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        _client = new HttpClient(new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = MaxConcurrentRequests,
            AllowAutoRedirect = false,
            ConnectCallback = _egress.ConnectAsync,
        })
        {
            Timeout = _timeout,
        };
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Sends the batch's requests, up to <see cref="MaxConcurrentRequests"/> at once over at most as many
    /// connections. Each payload's outcome is its own: failed ones are reported with <see cref="SinkBatch.Fail"/>, so
    /// only their hook calls take the failure path and nothing delivered is sent again. When every request failed
    /// the batch fails as a whole (the first error is thrown, so the retry contract sees what kind of failure it was).
    /// </summary>
    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var client = _client ?? throw new SinkTransientException($"http sink '{Name}' is not connected");
        var failures = new Exception?[batch.Count];
        if (batch.Count == 1)
        {
            failures[0] = await SendAsync(client, batch, 0, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            using var slots = new SemaphoreSlim(MaxConcurrentRequests);
            await Task.WhenAll(Enumerable.Range(0, batch.Count).Select(async i =>
            {
                await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    failures[i] = await SendAsync(client, batch, i, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    slots.Release();
                }
            })).ConfigureAwait(false);
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (failures.All(f => f is not null)) throw failures[0]!;
        for (var i = 0; i < failures.Length; i++)
            if (failures[i] is { } failure) batch.Fail(i, failure);
    }

    /// <summary>One payload's request; returns why it failed, or null when the endpoint took it.</summary>
    private async Task<Exception?> SendAsync(HttpClient client, SinkBatch batch, int i, CancellationToken cancellationToken)
    {
        try
        {
            using var request = new HttpRequestMessage(_method, _url);
            var content = new ByteArrayContent(batch.Payloads[i].Data.ToJsonBytes());
            content.Headers.ContentType = Json;
            request.Content = content;
            foreach (var (key, value) in _headers)
            {
                if (!request.Headers.TryAddWithoutValidation(key, value)) content.Headers.TryAddWithoutValidation(key, value);
            }
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
                return new HttpEgressRefusedException(refused.Message);
            }
            using (response)
            {
                var status = (int)response.StatusCode;
                if (response.IsSuccessStatusCode)
                {
                    await ReadBoundedAsync(response, DrainLimitBytes, deadline.Token).ConfigureAwait(false);
                    return null;
                }
                var (excerpt, truncated) = await ReadBoundedAsync(response, BodyExcerptBytes, deadline.Token).ConfigureAwait(false);
                var body = Encoding.UTF8.GetString(excerpt) + (truncated ? "…" : "");
                var redirect = status is >= 300 and < 400
                    ? $"redirects are not followed (Location: {SinkSecretMasker.Url(response.Headers.Location?.ToString() ?? "none")}); "
                    : "";
                var text = $"HTTP {status} {response.ReasonPhrase} from {_method} {_url.GetLeftPart(UriPartial.Path)} (payload {i + 1} of {batch.Count}): {redirect}{body}";
                // Throttling and server errors may pass; a 3xx or 4xx says the request itself is wrong.
                return new HttpSinkException(status, body, text, transient: status is >= 500 or 408 or 429);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException e)
        {
            // Not the caller's cancellation: the request's own deadline passed (it surfaced as "The operation was canceled").
            return new TimeoutException($"{_method} {_url.GetLeftPart(UriPartial.Path)} (payload {i + 1} of {batch.Count}) timed out after " +
                $"{_timeout.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}s (timeout_seconds)", e);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Connection failures, timeouts, a payload whose data has no JSON form: this payload's failure.
            return e;
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
            var buffer = new byte[limit + 1];
            var length = 0;
            while (length < buffer.Length)
            {
                var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
                if (read == 0) break;
                length += read;
            }
            return length > limit ? (buffer[..limit], true) : (buffer[..length], false);
        }
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _client, null)?.Dispose();
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
}

/// <summary>The endpoint answered with a non-2xx status.</summary>
public sealed class HttpSinkException(int status, string bodyExcerpt, string message, bool transient) : SinkDeliveryException(message)
{
    public int Status { get; } = status;
    public string BodyExcerpt { get; } = bodyExcerpt;
    public bool IsTransient { get; } = transient;
}
