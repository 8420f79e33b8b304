using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Drakkar.Observability.Http;

/// <summary>Whether the worker should receive traffic, and if not, every reason why.</summary>
public sealed record Readiness(bool IsReady, IReadOnlyList<string> Reasons);

/// <summary>
/// Serves <c>/metrics</c>, <c>/healthz</c> and <c>/readyz</c> (SPEC X1, X2). A hand-written HTTP/1.1 responder on a
/// socket rather than ASP.NET Core or <c>HttpListener</c>: probes and scrapers only ever send a bare GET, and this
/// keeps the worker small, trimmable and free of Native AOT warnings. One request per connection
/// (<c>Connection: close</c>); the request head is bounded in size and must arrive within a second. At most
/// <see cref="MaxConnections"/> connections are open; a new one beyond that evicts the oldest connection that has
/// not sent its request yet, so idle or slow clients can never keep a probe from being answered. Only when every
/// open connection is being answered is the newcomer closed. There is no authentication: see docs/security.md.
/// </summary>
internal sealed partial class OperationsEndpoint : SocketServer
{
    public const string MetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
    private const string TextContentType = "text/plain; charset=utf-8";
    internal const int MaxConnections = 32;
    // Probes and scrapers send their request with the connection; a second is generous on any network.
    private static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(5);

    private readonly Func<string> _metrics;
    private readonly Func<Readiness> _readiness;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly LinkedList<Connection> _open = new(); // oldest first

    private OperationsEndpoint(TcpListener listener, Func<string> metrics, Func<Readiness> readiness, ILogger logger)
        : base(listener, "Metrics endpoint", logger)
    {
        _metrics = metrics;
        _readiness = readiness;
        _logger = logger;
        StartAccepting();
    }

    /// <summary>Listens on <paramref name="host"/>:<paramref name="port"/>; a port already in use is a startup error naming <c>metrics.port</c>.</summary>
    public static TcpListener Listen(string host, int port) => Listen(host, port, "the metrics endpoint", "metrics");

    /// <summary>Serves on <paramref name="host"/>:<paramref name="port"/> (see <see cref="Listen(string, int)"/>).</summary>
    public static OperationsEndpoint Start(string host, int port, Func<string> metrics, Func<Readiness> readiness, ILogger logger)
    {
        var listener = Listen(host, port);
        var endpoint = new OperationsEndpoint(listener, metrics, readiness, logger);
        LogListening(logger, endpoint.LocalEndpoint.ToString());
        return endpoint;
    }

    protected override void Accepted(Socket socket)
    {
        var connection = Admit(socket);
        if (connection is null) socket.Dispose();
        else _ = ServeAsync(connection);
    }

    /// <summary>Registers a new connection, evicting the oldest one still waiting for its request when at the limit; null when none can go.</summary>
    private Connection? Admit(Socket socket)
    {
        Connection? evicted = null;
        Connection admitted;
        lock (_gate)
        {
            if (_open.Count >= MaxConnections)
            {
                for (var node = _open.First; node is not null; node = node.Next)
                {
                    if (node.Value.Answering) continue;
                    evicted = node.Value;
                    _open.Remove(node);
                    break;
                }
                if (evicted is null) return null;
            }
            admitted = new Connection(socket, Stopping);
            admitted.Node = _open.AddLast(admitted);
        }
        evicted?.Evict();
        return admitted;
    }

    private async Task ServeAsync(Connection connection)
    {
        var socket = connection.Socket;
        try
        {
            connection.Deadline.CancelAfter(HeadTimeout);
            var head = await ReadHeadAsync(socket, connection.Deadline.Token).ConfigureAwait(false);
            lock (_gate)
            {
                if (connection.Node?.List is null) return; // evicted just as its request arrived
                connection.Answering = true;
            }
            connection.Deadline.CancelAfter(ResponseTimeout);
            var response = head is null
                ? new Response(431, "Request Header Fields Too Large", TextContentType, "request head too large\n")
                : Route(head);
            await socket.SendAsync(response.Encode(head?.StartsWith("HEAD ", StringComparison.Ordinal) == true), connection.Deadline.Token).ConfigureAwait(false);
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            // The client left, was too slow, was evicted, or the worker is stopping: there is no one left to answer.
        }
        catch (Exception e)
        {
            LogRequestFailed(_logger, e);
        }
        finally
        {
            lock (_gate)
            {
                if (connection.Node?.List is not null) _open.Remove(connection.Node);
            }
            connection.Dispose();
        }
    }

    /// <summary>One open connection: its socket, its deadline, and whether its request is being answered.</summary>
    private sealed class Connection(Socket socket, CancellationToken stopping) : IDisposable
    {
        public Socket Socket { get; } = socket;
        public CancellationTokenSource Deadline { get; } = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        public LinkedListNode<Connection>? Node { get; set; }

        /// <summary>Set under the endpoint's lock once the request head is in; such a connection is never evicted.</summary>
        public bool Answering { get; set; }

        /// <summary>Ends the wait for a request; the serving task then closes the socket.</summary>
        public void Evict()
        {
            try
            {
                Deadline.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Already finished on its own.
            }
        }

        public void Dispose()
        {
            Socket.Dispose();
            Deadline.Dispose();
        }
    }

    /// <summary>Answers one request head: the request line decides everything, other headers are ignored.</summary>
    internal Response Route(string head)
    {
        var lineEnd = head.IndexOf('\n');
        var requestLine = (lineEnd < 0 ? head : head[..lineEnd]).TrimEnd('\r');
        var parts = requestLine.Split(' ');
        if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal) || !parts[1].StartsWith('/'))
            return new Response(400, "Bad Request", TextContentType, "bad request\n");
        if (parts[0] is not ("GET" or "HEAD"))
            return new Response(405, "Method Not Allowed", TextContentType, "only GET is served\n", "Allow: GET, HEAD\r\n");
        var query = parts[1].IndexOf('?');
        var path = query < 0 ? parts[1] : parts[1][..query];
        switch (path)
        {
            case "/metrics":
                return new Response(200, "OK", MetricsContentType, _metrics());
            case "/healthz":
                return new Response(200, "OK", TextContentType, "ok\n");
            case "/readyz":
                var readiness = _readiness();
                if (readiness.IsReady) return new Response(200, "OK", TextContentType, "ready\n");
                var body = new StringBuilder("not ready:\n");
                foreach (var reason in readiness.Reasons) body.Append("- ").Append(reason).Append('\n');
                return new Response(503, "Service Unavailable", TextContentType, body.ToString());
            default:
                return new Response(404, "Not Found", TextContentType, "not found; try /metrics, /healthz or /readyz\n");
        }
    }

    internal sealed record Response(int Status, string Reason, string ContentType, string Body, string ExtraHeaders = "")
    {
        public byte[] Encode(bool headOnly)
        {
            var body = Encoding.UTF8.GetBytes(Body);
            var head = Encoding.ASCII.GetBytes(
                $"HTTP/1.1 {Status} {Reason}\r\nContent-Type: {ContentType}\r\nContent-Length: {body.Length}\r\n" +
                $"Cache-Control: no-store\r\nConnection: close\r\n{ExtraHeaders}\r\n");
            return headOnly ? head : [.. head, .. body];
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Metrics and probes at http://{Endpoint}/ (/metrics, /healthz, /readyz)")]
    private static partial void LogListening(ILogger logger, string endpoint);

    [LoggerMessage(Level = LogLevel.Error, Message = "Metrics endpoint failed to answer a request")]
    private static partial void LogRequestFailed(ILogger logger, Exception error);
}
