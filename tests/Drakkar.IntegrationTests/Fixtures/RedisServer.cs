namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>A redis-server without persistence on a free loopback port; can be stopped and restarted on that port.</summary>
public sealed class RedisServer : IDisposable
{
    private const string Install = "apt-get install -y redis-server";
    private readonly string _binary;
    private ServerProcess? _server;

    public RedisServer()
    {
        _binary = Tools.RequireOnPath("redis-server", "Redis server", Install);
        Port = FreePort.Next();
        Start();
    }

    public int Port { get; }

    public string Url => $"redis://127.0.0.1:{Port}/0";

    public bool IsRunning => _server is { HasExited: false };

    public void Start()
    {
        if (IsRunning) return;
        _server?.Dispose();
        _server = ServerProcess.Start(_binary,
        [
            "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "no", "--daemonize", "no",
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
