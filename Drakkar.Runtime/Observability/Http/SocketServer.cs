using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Drakkar.Observability.Http;

/// <summary>
/// A listening socket and its accept loop, shared by the operations endpoint (<c>/metrics</c>, probes) and the debug
/// UI: each subclass decides what an accepted connection gets, including whether it is refused (its own cap), and
/// reads the request with <see cref="ReadHeadAsync"/>.
/// </summary>
internal abstract partial class SocketServer : IAsyncDisposable
{
    private const int MaxRequestHeadBytes = 8 * 1024;

    private readonly TcpListener _listener;
    private readonly string _name;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task _accepting = Task.CompletedTask;

    // name: what log lines call this server ("Metrics endpoint", "Debug UI").
    protected SocketServer(TcpListener listener, string name, ILogger logger)
    {
        _listener = listener;
        _name = name;
        _logger = logger;
    }

    /// <summary>Where the server listens (the real port when 0 was asked for).</summary>
    public IPEndPoint LocalEndpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>Cancelled when the server is disposed.</summary>
    protected CancellationToken Stopping => _stop.Token;

    /// <summary>
    /// A started listener on <paramref name="host"/>:<paramref name="port"/> (<c>localhost</c> or an IP address); a
    /// port in use is an error naming <paramref name="section"/><c>.port</c>.
    /// </summary>
    internal static TcpListener Listen(string host, int port, string what, string section)
    {
        var address = host.Trim().Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback : IPAddress.Parse(host.Trim());
        var listener = new TcpListener(address, port);
        try
        {
            listener.Start(backlog: 64);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new Hosting.WorkerStartupException(
                $"{what} cannot listen on {host}:{port} ({e.Message}); set {section}.port to a free port, or {section}.enabled: false", e);
        }
        return listener;
    }

    /// <summary>The request head (up to the blank line) as ASCII; null when it exceeds the size bound.</summary>
    internal static async Task<string?> ReadHeadAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxRequestHeadBytes];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length) return null;
            var read = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0) return Encoding.ASCII.GetString(buffer, 0, length);
            var scanFrom = Math.Max(0, length - 3);
            length += read;
            var span = buffer.AsSpan(scanFrom, length - scanFrom);
            if (span.IndexOf("\r\n\r\n"u8) >= 0 || span.IndexOf("\n\n"u8) >= 0) return Encoding.ASCII.GetString(buffer, 0, length);
        }
    }

    /// <summary>Starts the accept loop; called at the end of the subclass's constructor, once it can serve.</summary>
    protected void StartAccepting() => _accepting = Task.Run(AcceptLoopAsync);

    /// <summary>Takes over an accepted socket: starts serving it without waiting, or disposes it.</summary>
    protected abstract void Accepted(Socket socket);

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _accepting.ConfigureAwait(false);
        _listener.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                if (_stop.IsCancellationRequested) return;
                LogAcceptFailed(_logger, _name, e.Message);
                continue;
            }
            Accepted(socket);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Server} could not accept a connection: {Reason}")]
    private static partial void LogAcceptFailed(ILogger logger, string server, string reason);
}
