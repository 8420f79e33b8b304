using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;

namespace Drakkar.Sinks.Http;

/// <summary>
/// One JSON request per payload to the configured URL (SPEC S12), in batch order, stopping at the first failure.
/// Any non-2xx answer is a failure that carries the status and an excerpt of the body. Not idempotent: a POST may
/// have side effects.
/// </summary>
public sealed partial class HttpSink : ISink
{
    private const int BodyExcerptChars = 512;
    private static readonly MediaTypeHeaderValue Json = new("application/json") { CharSet = "utf-8" };

    /// <summary>Cloud metadata endpoints: a sink pointed at one would leak instance credentials.</summary>
    internal static readonly string[] MetadataHosts =
        ["169.254.169.254", "100.100.100.200", "192.0.0.192", "metadata.google.internal", "metadata.packet.net"];

    private readonly Uri _url;
    private readonly HttpMethod _method;
    private readonly TimeSpan _timeout;
    private readonly KeyValuePair<string, string>[] _headers;
    private HttpClient? _client;

    internal HttpSink(string name, HttpSinkConfig config, SinkSecretMasker masker, Func<string, string?>? environment = null)
    {
        Name = name;
        var path = $"sinks.http.{name}";
        _url = ValidateUrl(config.Url, path);
        masker.AddCredentialsOf(config.Url);
        _method = new HttpMethod(string.IsNullOrWhiteSpace(config.Method) ? "POST" : config.Method.Trim().ToUpperInvariant());
        if (config.TimeoutSeconds <= 0) throw new SinkConfigurationException($"{path}.timeout_seconds must be positive, got {config.TimeoutSeconds}.");
        _timeout = TimeSpan.FromSeconds(config.TimeoutSeconds);
        environment ??= Environment.GetEnvironmentVariable;
        _headers = [.. config.Headers.Select(h => new KeyValuePair<string, string>(h.Key, Expand(h.Value, environment, $"{path}.headers.{h.Key}")))];
        // Credentials travel in headers; their values must never reach a log or the DLQ. Ordinary headers stay
        // readable (masking a value like "search" would garble every message that mentions it).
        foreach (var (key, value) in _headers)
        {
            if (!SensitiveHeader().IsMatch(key)) continue;
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
        _client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = _timeout };
        return ValueTask.CompletedTask;
    }

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var client = _client ?? throw new SinkTransientException($"http sink '{Name}' is not connected");
        for (var i = 0; i < batch.Count; i++)
        {
            using var request = new HttpRequestMessage(_method, _url);
            var content = new ByteArrayContent(batch.Payloads[i].Data.ToJsonBytes());
            content.Headers.ContentType = Json;
            request.Content = content;
            foreach (var (key, value) in _headers)
            {
                if (!request.Headers.TryAddWithoutValidation(key, value)) content.Headers.TryAddWithoutValidation(key, value);
            }
            using var response = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) continue;
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (body.Length > BodyExcerptChars) body = body[..BodyExcerptChars] + "…";
            var status = (int)response.StatusCode;
            var text = $"HTTP {status} {response.ReasonPhrase} from {_method} {_url.GetLeftPart(UriPartial.Path)} (payload {i + 1} of {batch.Count}): {body}";
            // Throttling and server errors may pass; a 4xx says the request itself is wrong.
            throw status is >= 500 or 408 or 429
                ? new HttpSinkException(status, body, text, transient: true)
                : new HttpSinkException(status, body, text, transient: false);
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
        var host = uri.IdnHost.TrimEnd('.').ToLowerInvariant();
        if (MetadataHosts.Contains(host) || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && MetadataHosts.Contains(ip.MapToIPv4().ToString())))
            throw new SinkConfigurationException($"{path}.url points at the cloud metadata endpoint {host}; that is refused so instance credentials cannot leak.");
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

    [GeneratedRegex("auth|token|key|secret|password|cookie|signature|credential", RegexOptions.IgnoreCase)]
    private static partial Regex SensitiveHeader();

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
