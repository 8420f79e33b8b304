namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>
/// A redis-server on a free loopback port (and a unix socket beside it); can be killed and restarted on that port
/// (an outage) without losing what it acknowledged. <see cref="WithTls"/> makes one that speaks only TLS on its port.
/// </summary>
public sealed class RedisServer : IDisposable
{
    private const string Install = "apt-get install -y redis-server";
    private readonly string _binary;
    private readonly string[] _extraArgs;
    private readonly bool _appendOnly;
    // The append-only file: a killed server comes back with every write it acknowledged.
    private readonly string _dataDir = Directory.CreateTempSubdirectory("drakkar-redis-").FullName;
    private ServerProcess? _server;

    public RedisServer() : this(_ => [])
    {
    }

    private RedisServer(Func<int, string[]> extraArgs, bool appendOnly = true)
    {
        _appendOnly = appendOnly;
        _binary = Tools.RequireOnPath("redis-server", "Redis server", Install);
        Port = FreePort.Next();
        UnixSocket = Path.Combine(Path.GetTempPath(), $"drakkar-redis-{Port}.sock");
        _extraArgs = extraArgs(Port);
        Start();
    }

    /// <summary>
    /// A server without the append-only file, as the bench has always measured against (a restart comes back empty):
    /// the sink and the client it is compared with both write to it.
    /// </summary>
    public static RedisServer WithoutPersistence() => new(_ => [], appendOnly: false);

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
            // Redis writes the AOF before it answers (appendfsync only decides when the kernel syncs it), so a kill
            // loses nothing acknowledged; without it a restarted server was empty, and a test counting the keys a
            // worker wrote before an outage found them "lost".
            "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", _appendOnly ? "yes" : "no", "--appendfsync", "no", "--dir", _dataDir,
            "--protected-mode", "no", "--daemonize", "no", "--unixsocket", UnixSocket, "--unixsocketperm", "700",
            .. _extraArgs,
        ]);
        _server.WaitForPort(Port, "Redis", TimeSpan.FromSeconds(15));
        // A TLS-only server has no plaintext port to ask; it is never restarted.
        if (_extraArgs.Length == 0 && _appendOnly) WaitUntilLoaded();
    }

    /// <summary>After a restart the server answers LOADING until it has read its append-only file back.</summary>
    private void WaitUntilLoaded()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            try
            {
                using var client = new Support.Resp(Port);
                client.Call("PING");
                return;
            }
            catch (InvalidOperationException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(20);
            }
        }
    }

    /// <summary>Kills the server (an outage); <see cref="Start"/> brings it back on the same port.</summary>
    public void Stop()
    {
        _server?.Dispose();
        _server = null;
    }

    public void Dispose()
    {
        Stop();
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisServer>
{
    public const string Name = "redis";
}
