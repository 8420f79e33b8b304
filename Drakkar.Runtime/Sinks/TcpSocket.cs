using System.Net.Sockets;

namespace Drakkar.Sinks;

/// <summary>Opens the plain TCP connections the hand-written Redis protocol speaks over.</summary>
internal static class TcpSocket
{
    /// <summary>A connected socket with Nagle off (requests are written whole); disposed again when connecting fails.</summary>
    public static async Task<Socket> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
