using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Drakkar.Observability.Http;
using Microsoft.Extensions.Logging;
using Response = Drakkar.Observability.Http.OperationsEndpoint.Response;

namespace Drakkar.Diagnostics.Ui;

/// <summary>
/// Serves the debug page and its JSON on <c>debug.host:debug.port</c>, with the same hand-written HTTP/1.1 responder
/// as <c>/metrics</c> (one request per connection) plus one long-lived stream: <c>/api/stream</c>, server-sent events
/// with the state every second and task events as they finish. With <c>debug.auth_token</c> every request must carry
/// the token (<c>Authorization: Bearer</c>, <c>?token=</c>, or the cookie a <c>?token=</c> request sets); without a
/// token it answers only requests addressed to one of its own names (<see cref="HostAllowed"/>), so that a web page
/// whose domain was re-pointed at this address (DNS rebinding) cannot read it. The stream refuses an <c>Origin</c> that
/// is neither this server nor listed in <c>debug.allowed_ws_origins</c>.
/// </summary>
internal sealed partial class DebugServer : SocketServer
{
    internal const int MaxConnections = 64;
    // Live pages hold their event stream open for as long as they are shown; capped well below MaxConnections so that
    // forgotten tabs cannot take every connection from the operator's requests (streams are never evicted).
    internal const int MaxStreams = 16;
    private const string TextType = "text/plain; charset=utf-8";
    private const string JsonType = "application/json; charset=utf-8";
    // The page loads nothing from anywhere else, and runs only its own script.
    private const string PageHeaders =
        "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'\r\n" +
        "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n";
    private static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan StreamInterval = TimeSpan.FromSeconds(1);

    private readonly DebugConfig _config;
    private readonly DebugJson _json;
    private readonly Probe.ProbeRunner? _probe;
    private readonly ILogger _logger;
    private static readonly TimeSpan CookieLifetime = TimeSpan.FromHours(12);
    private readonly string _cookieValue;
    // Open connections, and those of them still waiting for their request head, oldest first (both under this lock).
    private readonly LinkedList<Socket> _waitingForHead = new();
    private int _open;
    private int _streams;

    private DebugServer(TcpListener listener, DebugConfig config, DebugJson json, Probe.ProbeRunner? probe, ILogger logger)
        : base(listener, "Debug UI", logger)
    {
        _config = config;
        _json = json;
        _probe = probe;
        _cookieValue = Convert.ToHexStringLower(HMACSHA256.HashData(RandomNumberGenerator.GetBytes(32), Encoding.UTF8.GetBytes(config.AuthToken)));
        _logger = logger;
        StartAccepting();
    }

    /// <summary>Listens on <c>debug.host:debug.port</c>; a port in use is a startup error naming the keys.</summary>
    public static TcpListener Listen(DebugConfig config) => Listen(config.Host, config.Port, "the debug UI", "debug");

    /// <summary>Serves the UI on <paramref name="listener"/> (from <see cref="Listen(DebugConfig)"/>), which it owns from now on.</summary>
    public static DebugServer Start(TcpListener listener, DebugConfig config, DebugJson json, Probe.ProbeRunner? probe, ILogger logger) =>
        new(listener, config, json, probe, logger);

    /// <summary>
    /// Serves the new connection. At <see cref="MaxConnections"/> open, the oldest connection that has not yet sent its
    /// request head is closed to make room: a browser sends its request as soon as it connects, so a client holding
    /// connections open without asking anything cannot lock the operators out.
    /// </summary>
    protected override void Accepted(Socket socket)
    {
        lock (_waitingForHead)
        {
            if (_open >= MaxConnections)
            {
                if (_waitingForHead.First is not { } oldest)
                {
                    socket.Dispose();
                    return;
                }
                _waitingForHead.Remove(oldest);
                oldest.Value.Dispose();
            }
            _open++;
        }
        _ = ServeAsync(socket);
    }

    private async Task ServeAsync(Socket socket)
    {
        LinkedListNode<Socket>? waiting;
        lock (_waitingForHead) waiting = _waitingForHead.AddLast(socket);
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Stopping);
            deadline.CancelAfter(HeadTimeout);
            var head = await ReadHeadAsync(socket, deadline.Token).ConfigureAwait(false);
            lock (_waitingForHead)
            {
                if (waiting.List is not null) _waitingForHead.Remove(waiting);
            }
            var request = head is null ? null : DebugRequest.Parse(head);
            if (request is null)
            {
                await SendAsync(socket, new Response(400, "Bad Request", TextType, "bad request\n"), false).ConfigureAwait(false);
                return;
            }
            deadline.CancelAfter(Timeout.InfiniteTimeSpan);
            if (request.Method == "POST" && request.Path == "/api/probe")
            {
                await SendAsync(socket, await ProbeAsync(request).ConfigureAwait(false), false).ConfigureAwait(false);
                return;
            }
            if (request.Method == "GET" && request.Path == "/api/stream" && HostAllowed(_config, request.Header("host"))
                && Authorize(request, out _) is null && OriginAllowed(request))
            {
                if (!TryOpenStream())
                {
                    await SendAsync(socket, new Response(503, "Service Unavailable", TextType,
                        $"{MaxStreams} live pages are already following this worker; close one, or read /api/state\n", "Retry-After: 10\r\n"), false).ConfigureAwait(false);
                    return;
                }
                try
                {
                    await StreamAsync(socket).ConfigureAwait(false);
                }
                finally
                {
                    Interlocked.Decrement(ref _streams);
                }
                return;
            }
            await SendAsync(socket, Route(request), request.Method == "HEAD").ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            // The client left, was too slow, or the worker is stopping.
        }
        catch (Exception e)
        {
            LogRequestFailed(_logger, e);
        }
        finally
        {
            lock (_waitingForHead)
            {
                if (waiting.List is not null) _waitingForHead.Remove(waiting);
                _open--;
            }
            socket.Dispose();
        }
    }

    /// <summary>Answers every request but an authorized, allowed <c>/api/stream</c> and <c>POST /api/probe</c>.</summary>
    internal Response Route(DebugRequest request)
    {
        // The token first: without it, every request gets the 401, whatever its method (even which methods exist is not said).
        if (Refuse(request, out var setCookie) is { } refused) return refused;
        if (request.Path == "/api/probe" && request.Method != "POST")
            return new Response(405, "Method Not Allowed", TextType, "POST /api/probe?partition=P&offset=O[&count=N][&topic=T]\n", "Allow: POST\r\n");
        if (request.Method is not ("GET" or "HEAD"))
            return new Response(405, "Method Not Allowed", TextType, "only GET and HEAD are served here (and POST on /api/probe)\n", "Allow: GET, HEAD\r\n");
        if (request.Path == "/api/stream") return new Response(403, "Forbidden", TextType, "origin not allowed; see debug.allowed_ws_origins\n");
        return request.Path switch
        {
            // The page opened with ?token= once: the cookie is set and the token leaves the address bar and history.
            "/" or "/index.html" when setCookie.Length > 0 => new Response(303, "See Other", TextType, "", $"Location: {request.Path}\r\n{setCookie}"),
            "/" or "/index.html" => Asset("index.html", "text/html; charset=utf-8", setCookie),
            "/app.js" => Asset("app.js", "text/javascript; charset=utf-8", setCookie),
            "/app.css" => Asset("app.css", "text/css; charset=utf-8", setCookie),
            "/api/state" => Json(_json.State(), setCookie),
            "/api/tasks" => Json(_json.Tasks(), setCookie),
            "/api/dlq" => Json(_json.DeadLetters(), setCookie),
            "/api/config" => Json(_json.Config(), setCookie),
            _ => new Response(404, "Not Found", TextType, "not found\n"),
        };
    }

    /// <summary>The 421 for a name this UI does not answer to (<see cref="HostAllowed"/>), the 401 without the token, or null.</summary>
    private Response? Refuse(DebugRequest request, out string setCookie)
    {
        setCookie = "";
        if (!HostAllowed(_config, request.Header("host")))
            return new Response(421, "Misdirected Request", TextType,
                "this debug UI has no debug.auth_token, so it answers only requests addressed to localhost, an IP address, " +
                "this machine's name, debug.host, or the host of debug.debug_url or of an entry of debug.allowed_ws_origins; set debug.debug_url to the address you " +
                "use, or set debug.auth_token\n");
        return Authorize(request, out setCookie);
    }

    /// <summary>
    /// <c>POST /api/probe</c>: the probe action (<see cref="Probe.ProbeRunner"/>). Besides the checks every request gets,
    /// a browser's request must come from this page's origin or one in <c>debug.allowed_ws_origins</c>, so that another
    /// site cannot make an operator's browser start probes.
    /// </summary>
    private async Task<Response> ProbeAsync(DebugRequest request)
    {
        if (Refuse(request, out _) is { } refused) return refused;
        if (!OriginAllowed(request))
            return new Response(403, "Forbidden", TextType, "origin not allowed: a probe starts only from this page or an origin in debug.allowed_ws_origins\n");
        if (_probe is null)
            return new Response(404, "Not Found", TextType, "this worker offers no probe action (it was not started by DrakkarApp or AddDrakkar)\n");
        var answer = await _probe.RunAsync(request.Query, Stopping).ConfigureAwait(false);
        var reason = answer.Status switch
        {
            200 => "OK", 400 => "Bad Request", 404 => "Not Found", 409 => "Conflict", 502 => "Bad Gateway", _ => "Internal Server Error",
        };
        return new Response(answer.Status, reason, JsonType, answer.Json);
    }

    /// <summary>Null when the request may proceed; else the 401. <paramref name="setCookie"/> carries a token given in the query on to later requests.</summary>
    private Response? Authorize(DebugRequest request, out string setCookie)
    {
        setCookie = "";
        var expected = _config.AuthToken;
        if (expected.Length == 0) return null;
        if (request.Query.TryGetValue("token", out var query) && Same(query, expected))
        {
            setCookie = $"Set-Cookie: {CookieName}={_cookieValue}; Path=/; Max-Age={CookieLifetime.TotalSeconds:0}; HttpOnly; SameSite=Strict\r\n";
            return null;
        }
        if (request.Header("authorization") is { } authorization && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            && Same(authorization[7..].Trim(), expected))
            return null;
        if (request.Cookie(CookieName) is { } cookie && Same(cookie, _cookieValue)) return null;
        return new Response(401, "Unauthorized", TextType,
            "the debug UI needs its token (debug.auth_token): Authorization: Bearer <token>, or ?token=<token> once\n",
            "WWW-Authenticate: Bearer realm=\"drakkar-debug\"\r\n");
    }

    // Browsers send a host's cookies to every port of it: the cookie is named after this port and holds an HMAC of the
    // token under a key this process drew at start, never the token itself. Another service on this host that receives
    // it learns nothing about the token, and the value stops working when this worker restarts or after 12 hours.
    private string CookieName => $"drakkar_debug_{_config.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    // Compares digests, so that neither the content nor the length of the token shows in the time a refusal takes.
    private static bool Same(string given, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));

    /// <summary>
    /// Whether a request with this <c>Host</c> header is answered. With <c>debug.auth_token</c> every host is (the token
    /// is the check). Without one, only a name that cannot belong to someone else's site: none given (not a browser),
    /// an IP address, <c>localhost</c> (and <c>*.localhost</c>), this machine's name, <c>debug.host</c>, the host of
    /// <c>debug.debug_url</c> or of an entry of <c>debug.allowed_ws_origins</c>.
    /// </summary>
    internal static bool HostAllowed(DebugConfig config, string? hostHeader)
    {
        if (config.AuthToken.Length > 0 || string.IsNullOrWhiteSpace(hostHeader)) return true;
        var host = HostName(hostHeader.Trim());
        if (IPAddress.TryParse(host, out _)) return true;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)) return true;
        if (host.Equals(Environment.MachineName, StringComparison.OrdinalIgnoreCase) || host.Equals(config.Host, StringComparison.OrdinalIgnoreCase)) return true;
        foreach (var url in config.AllowedWsOrigins.Prepend(config.DebugUrl))
        {
            if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && host.Equals(uri.IdnHost, StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }

    /// <summary><c>host</c>, <c>host:port</c>, <c>[v6]</c> or <c>[v6]:port</c> → the host without brackets or port.</summary>
    private static string HostName(string host)
    {
        if (host.StartsWith('['))
        {
            var end = host.IndexOf(']');
            return end > 0 ? host[1..end] : host;
        }
        var colon = host.LastIndexOf(':');
        return colon > 0 && host.IndexOf(':') == colon ? host[..colon] : host;
    }

    /// <summary>
    /// The warning for a UI bound beyond this machine (<c>debug.host</c> not a loopback address) without
    /// <c>debug.auth_token</c>: anyone who reaches the port reads task output, exposed variables and the recorder's
    /// events. Null when the UI is off, bound to loopback, or protected by a token.
    /// </summary>
    internal static string? ExposureWarning(DebugConfig config)
    {
        if (!config.Enabled || config.AuthToken.Length > 0) return null;
        var host = config.Host.Trim();
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address)))
            return null;
        return $"the debug UI listens on {host}:{config.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)} without debug.auth_token: " +
            "anyone who can reach that port reads task output, exposed environment variables and the flight recorder; " +
            "set debug.auth_token, or debug.host: 127.0.0.1";
    }

    /// <summary>No <c>Origin</c> (not a browser's cross-origin request), this server's own, or one of <c>debug.allowed_ws_origins</c>.</summary>
    private bool OriginAllowed(DebugRequest request)
    {
        if (request.Header("origin") is not { } origin) return true;
        if (request.Header("host") is { } host && (origin == $"http://{host}" || origin == $"https://{host}")) return true;
        return _config.AllowedWsOrigins.Any(o => o == "*" || string.Equals(o.TrimEnd('/'), origin, StringComparison.OrdinalIgnoreCase));
    }

    private bool TryOpenStream()
    {
        if (Interlocked.Increment(ref _streams) <= MaxStreams) return true;
        Interlocked.Decrement(ref _streams);
        return false;
    }

    private async Task StreamAsync(Socket socket)
    {
        var head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\n" +
            "X-Accel-Buffering: no\r\n\r\nretry: 2000\n\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(head), Stopping).ConfigureAwait(false);
        long lastSeq = 0;
        while (!Stopping.IsCancellationRequested)
        {
            var text = new StringBuilder();
            text.Append("event: state\ndata: ").Append(_json.State()).Append("\n\n");
            var tasks = _json.LiveTasks(lastSeq, out lastSeq);
            if (tasks.Length > 0) text.Append("event: tasks\ndata: ").Append(tasks).Append("\n\n");
            await socket.SendAsync(Encoding.UTF8.GetBytes(text.ToString()), Stopping).ConfigureAwait(false);
            await Task.Delay(StreamInterval, Stopping).ConfigureAwait(false);
        }
    }

    private static Response Json(string body, string extraHeaders) => new(200, "OK", JsonType, body, extraHeaders);

    private static Response Asset(string name, string contentType, string extraHeaders) =>
        new(200, "OK", contentType, Assets.Read(name), PageHeaders + extraHeaders);

    private static async Task SendAsync(Socket socket, Response response, bool headOnly)
    {
        await socket.SendAsync(response.Encode(headOnly)).ConfigureAwait(false);
        socket.Shutdown(SocketShutdown.Both);
    }

    /// <summary>The page's files, embedded in the assembly (Diagnostics/Ui/Assets).</summary>
    private static class Assets
    {
        private static readonly Dictionary<string, string> Cache = new(StringComparer.Ordinal);

        public static string Read(string name)
        {
            lock (Cache)
            {
                if (Cache.TryGetValue(name, out var text)) return text;
                using var stream = typeof(DebugServer).Assembly.GetManifestResourceStream($"Drakkar.Diagnostics.Ui.Assets.{name}")
                    ?? throw new InvalidOperationException($"the debug UI asset {name} is not embedded");
                using var reader = new StreamReader(stream, Encoding.UTF8);
                return Cache[name] = reader.ReadToEnd();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Debug UI failed to answer a request")]
    private static partial void LogRequestFailed(ILogger logger, Exception error);
}

/// <summary>The request line and headers of one debug UI request.</summary>
internal sealed record DebugRequest(string Method, string Path, IReadOnlyDictionary<string, string> Query, IReadOnlyDictionary<string, string> Headers)
{
    public string? Header(string name) => Headers.GetValueOrDefault(name);

    public string? Cookie(string name)
    {
        if (Header("cookie") is not { } cookies) return null;
        foreach (var part in cookies.Split(';'))
        {
            var eq = part.IndexOf('=');
            if (eq > 0 && part[..eq].Trim() == name) return part[(eq + 1)..].Trim();
        }
        return null;
    }

    /// <summary>Null when the request line is malformed.</summary>
    public static DebugRequest? Parse(string head)
    {
        var lines = head.Split('\n');
        var parts = lines[0].TrimEnd('\r').Split(' ');
        if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal) || !parts[1].StartsWith('/')) return null;
        var target = parts[1];
        var mark = target.IndexOf('?');
        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        if (mark >= 0)
        {
            foreach (var pair in target[(mark + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=');
                var key = Uri.UnescapeDataString((eq < 0 ? pair : pair[..eq]).Replace('+', ' '));
                query[key] = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' '));
            }
        }
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon > 0) headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        return new DebugRequest(parts[0], mark < 0 ? target : target[..mark], query, headers);
    }
}
