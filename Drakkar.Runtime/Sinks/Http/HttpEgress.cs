using System.Net;
using System.Net.Http;
using System.Net.Sockets;

namespace Drakkar.Sinks.Http;

/// <summary>
/// Where the HTTP sink may connect. Cloud metadata endpoints and link-local addresses (where those endpoints live)
/// are refused by name, by address literal, and, at connect time, by the address a name actually resolves to: the
/// socket is opened to exactly the address that was checked, so a DNS answer cannot change between the check and
/// the connection. Loopback is allowed when the URL says so (a loopback literal or <c>localhost</c>); a name that
/// merely resolves to loopback needs <c>allow_loopback</c>. Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7)
/// are ordinary destinations.
/// </summary>
/// <remarks>
/// Every other failure to open a connection (the name does not resolve, the connection is refused or reset, it takes
/// longer than <paramref name="connectTimeout"/>) is thrown as <see cref="HttpConnectException"/>: no request can have
/// been written on a connection that was never opened, so the sink may send it again whatever its method.
/// </remarks>
internal sealed class HttpEgress(string sinkName, bool allowLoopback, TimeSpan connectTimeout, Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null)
{
    private const string Reason = "a cloud metadata endpoint or link-local address; sending data there can leak cloud credentials";
    private static readonly string[] MetadataNames = ["metadata.google.internal", "metadata.packet.net"];
    private static readonly IPAddress[] MetadataAddresses =
    [
        IPAddress.Parse("100.100.100.200"), // Alibaba Cloud
        IPAddress.Parse("192.0.0.192"), // Oracle Cloud
        IPAddress.Parse("fd00:ec2::254"), // AWS over IPv6
    ];

    private readonly Func<string, CancellationToken, Task<IPAddress[]>> _resolve = resolve ?? Dns.GetHostAddressesAsync;

    /// <summary>The URL's host, normalized, when it is refused before any lookup (a metadata name or a refused address literal); else null.</summary>
    public static string? RefusedHost(Uri uri)
    {
        var host = uri.IdnHost.Trim('[', ']').TrimEnd('.').ToLowerInvariant();
        if (MetadataNames.Contains(host)) return host;
        // Uri already canonicalizes odd IPv4 spellings (0xA9FEA9FE, 2852039166).
        return IPAddress.TryParse(host, out var address) && IsRefused(address) ? Unmapped(address).ToString() : null;
    }

    /// <summary>Link-local (169.254.0.0/16, fe80::/10) and the cloud metadata addresses outside it, IPv4-mapped or not.</summary>
    public static bool IsRefused(IPAddress address)
    {
        address = Unmapped(address);
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var bytes = address.GetAddressBytes();
            if (bytes[0] == 169 && bytes[1] == 254) return true;
        }
        else if (address.IsIPv6LinkLocal)
        {
            return true;
        }
        var withoutScope = address.AddressFamily == AddressFamily.InterNetworkV6 ? new IPAddress(address.GetAddressBytes()) : address;
        return MetadataAddresses.Contains(withoutScope);
    }

    /// <summary><see cref="SocketsHttpHandler.ConnectCallback"/>: resolves, checks every address, connects to the checked ones.</summary>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var host = context.DnsEndPoint.Host.Trim('[', ']');
        var port = context.DnsEndPoint.Port;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(connectTimeout);
        try
        {
            return await ResolveCheckAndConnectAsync(host, port, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HttpConnectException($"could not connect to {host}:{port} within {connectTimeout.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}s",
                new TimeoutException("connect timed out", e));
        }
        catch (Exception e) when (e is not (HttpEgressRefusedException or OperationCanceledException))
        {
            throw new HttpConnectException($"could not connect to {host}:{port}: {e.Message}", e);
        }
    }

    private async Task<Stream> ResolveCheckAndConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        var literal = IPAddress.TryParse(host, out var parsed);
        var addresses = literal ? new[] { parsed! } : await _resolve(host, cancellationToken).ConfigureAwait(false);
        // Loopback written into the URL is deliberate; a name that resolves there may be a stale or rebound record.
        var loopbackAllowed = allowLoopback || literal || host.Equals("localhost", StringComparison.OrdinalIgnoreCase);
        foreach (var address in addresses)
        {
            if (IsRefused(address))
                throw new HttpEgressRefusedException($"http sink '{sinkName}' refused to connect to {host}: it resolves to {Unmapped(address)}, {Reason}.");
            if (!loopbackAllowed && IsLoopback(address))
                throw new HttpEgressRefusedException(
                    $"http sink '{sinkName}' refused to connect to {host}: it resolves to the loopback address {Unmapped(address)}; " +
                    $"set sinks.http.{sinkName}.allow_loopback: true if that is intended (a loopback address or localhost written in the URL needs no setting).");
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, port, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    // 0.0.0.0 and :: reach the local host on Linux, so they count as loopback.
    private static bool IsLoopback(IPAddress address)
    {
        address = Unmapped(address);
        return IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);
    }

    private static IPAddress Unmapped(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}

/// <summary>
/// No connection to the endpoint could be opened (the name did not resolve, the connection was refused or reset, the
/// connect timed out): nothing was written, so the request that waited for it was never sent.
/// </summary>
internal sealed class HttpConnectException(string message, Exception inner) : IOException(message, inner);

/// <summary>The HTTP sink would have connected to an address it must not reach; retrying cannot change that.</summary>
public sealed class HttpEgressRefusedException(string message) : SinkDeliveryException(message);
