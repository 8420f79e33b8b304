namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>
/// A redis-server without persistence on a free loopback port (and a unix socket beside it); can be stopped and
/// restarted on that port. <see cref="WithTls"/> makes one that speaks only TLS on its port.
/// </summary>
public sealed class RedisServer : IDisposable
{
    private const string Install = "apt-get install -y redis-server";
    private readonly string _binary;
    private readonly string[] _extraArgs;
    private ServerProcess? _server;

    public RedisServer() : this(_ => [])
    {
    }

    private RedisServer(Func<int, string[]> extraArgs)
    {
        _binary = Tools.RequireOnPath("redis-server", "Redis server", Install);
        Port = FreePort.Next();
        UnixSocket = Path.Combine(Path.GetTempPath(), $"drakkar-redis-{Port}.sock");
        _extraArgs = extraArgs(Port);
        Start();
    }

    /// <summary>A server whose port takes TLS connections only, with the given certificate; clients need no certificate.</summary>
    public static RedisServer WithTls(string certificateFile, string keyFile, string caFile) => new(port =>
    [
        "--port", "0", "--tls-port", port.ToString(), "--tls-cert-file", certificateFile, "--tls-key-file", keyFile,
        "--tls-ca-cert-file", caFile, "--tls-auth-clients", "no",
    ]);

    public int Port { get; }

    public string UnixSocket { get; }

    public string Url => $"redis://127.0.0.1:{Port}/0";

    public bool IsRunning => _server is { HasExited: false };

    public void Start()
    {
        if (IsRunning) return;
        _server?.Dispose();
        _server = ServerProcess.Start(_binary,
        [
            "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "no", "--daemonize", "no", "--unixsocket", UnixSocket, "--unixsocketperm", "700",
            .. _extraArgs,
        ]);
        _server.WaitForPort(Port, "Redis", TimeSpan.FromSeconds(15));
    }

    /// <summary>Kills the server (an outage); <see cref="Start"/> brings it back on the same port.</summary>
    public void Stop()
    {
        _server?.Dispose();
        _server = null;
    }

    public void Dispose() => Stop();
}

[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisServer>
{
    public const string Name = "redis";
}
