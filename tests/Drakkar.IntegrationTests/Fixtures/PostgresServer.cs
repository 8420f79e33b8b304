using Npgsql;

namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>
/// A throwaway PostgreSQL cluster (initdb) on a free loopback port, trust auth, removed at dispose; can be killed and
/// restarted on that port (an outage) without losing a row it acknowledged.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private const string Install = "apt-get install -y postgresql";
    private readonly string _binaries;
    private readonly string? _user;
    private readonly string _dataDir;
    private ServerProcess? _server;

    public PostgresServer()
    {
        _binaries = FindBinaries();
        _dataDir = Directory.CreateTempSubdirectory("drakkar-pg-").FullName;
        var asRoot = Environment.UserName == "root";
        _user = asRoot ? "postgres" : null;
        if (asRoot) ServerProcess.Run("chown", ["postgres:postgres", _dataDir]);
        ServerProcess.Run(Path.Combine(_binaries, "initdb"), ["-D", Path.Combine(_dataDir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"], _user);
        Port = FreePort.Next();
        ConnectionString = $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=true";
        Start();
    }

    public bool IsRunning => _server is { HasExited: false };

    /// <summary>Starts the server (again, after <see cref="Stop"/>) and waits until it answers queries.</summary>
    public void Start()
    {
        if (IsRunning) return;
        _server?.Dispose();
        _server = ServerProcess.Start(Path.Combine(_binaries, "postgres"),
        [
            "-D", Path.Combine(_dataDir, "data"), "-p", Port.ToString(), "-k", _dataDir, "-c", "listen_addresses=127.0.0.1",
            // fsync off: only an OS crash could lose data. synchronous_commit stays on: a commit is answered once its
            // WAL is written (to the kernel), so killing the server (Stop) loses no acknowledged row; with it off the
            // last ~0.2 s of acknowledged commits vanished at each kill.
            "-c", "fsync=off", "-c", "full_page_writes=off",
        ], _user);
        _server.WaitForPort(Port, "PostgreSQL", TimeSpan.FromSeconds(30));
        // Pooled connections to the killed server are dead; the tests' next query must not get one.
        NpgsqlConnection.ClearAllPools();
        WaitUntilAcceptingQueries();
    }

    /// <summary>
    /// Kills the server and its backends (every connection drops); <see cref="Start"/> brings it back on the same port.
    /// Returns once they are all gone, so that a <see cref="Start"/> right after it finds no live postmaster in the lock file.
    /// </summary>
    public void Stop()
    {
        if (_server is null) return;
        var pids = IsRunning ? ServerPids() : [];
        _server.Dispose();
        _server = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (pids.Any(pid => Directory.Exists($"/proc/{pid}")) && DateTime.UtcNow < deadline) Thread.Sleep(20);
    }

    /// <summary>The postmaster and its backends.</summary>
    private string[] ServerPids()
    {
        var postmaster = File.ReadLines(Path.Combine(_dataDir, "data", "postmaster.pid")).First().Trim();
        return
        [
            postmaster,
            .. Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).OfType<string>().Where(pid => pid.All(char.IsAsciiDigit))
                .Where(pid => ParentOf(pid) == postmaster),
        ];
    }

    /// <summary>
    /// Stops the server and its backends with SIGSTOP until the returned handle is disposed (SIGCONT): a destination
    /// that hangs. Connections stay open and new ones are queued by the kernel, but nothing answers.
    /// </summary>
    public IDisposable Freeze()
    {
        // A backend may exit between being listed and being signalled (a client just closed its connection).
        var pids = ServerPids().Select(int.Parse).ToArray();
        KillExisting(pids, SigStop);
        return new Resume(pids);
    }

    private static string? ParentOf(string pid)
    {
        try
        {
            // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after its closing parenthesis.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1];
        }
        catch (IOException)
        {
            return null;
        }
    }

    private const int SigStop = 19;
    private const int SigCont = 18;

    /// <summary>Signals each of <paramref name="pids"/> that still exists; one that has exited meanwhile is skipped.</summary>
    private static void KillExisting(int[] pids, int signal)
    {
        const int noSuchProcess = 3; // ESRCH
        foreach (var pid in pids)
        {
            if (Kill(pid, signal) != 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() is var errno and not noSuchProcess)
                throw new InvalidOperationException($"kill({pid}, {signal}) failed with errno {errno}");
        }
    }

    // DllImport rather than LibraryImport: the bench compiles this file too, without unsafe code.
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private sealed class Resume(int[] pids) : IDisposable
    {
        public void Dispose() => KillExisting(pids, SigCont);
    }

    public int Port { get; }

    public string ConnectionString { get; }

    /// <summary>Creates a fresh database and returns its connection string (tests stay independent).</summary>
    public string CreateDatabase(string name)
    {
        using var connection = new NpgsqlConnection(ConnectionString);
        connection.Open();
        using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        command.ExecuteNonQuery();
        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name }.ConnectionString;
    }

    public void Dispose()
    {
        Stop();
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>The server binaries: <c>DRAKKAR_PG_BIN</c>, else the newest <c>/usr/lib/postgresql/*/bin</c>.</summary>
    internal static string FindBinaries(string? configured = null)
    {
        configured ??= Environment.GetEnvironmentVariable("DRAKKAR_PG_BIN");
        var bin = !string.IsNullOrEmpty(configured)
            ? configured
            : Directory.Exists("/usr/lib/postgresql")
                ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                    .Where(d => File.Exists(Path.Combine(d, "initdb")))
                    .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
                    .FirstOrDefault()
                : null;
        if (bin is null) throw new MissingToolException("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)", Install);
        Tools.Require(Path.Combine(bin, "initdb"), "PostgreSQL initdb", Install);
        Tools.Require(Path.Combine(bin, "postgres"), "PostgreSQL server", Install);
        return bin;
    }

    private void WaitUntilAcceptingQueries()
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                using var connection = new NpgsqlConnection(ConnectionString);
                connection.Open();
                return;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
            catch (NpgsqlException e)
            {
                throw new TimeoutException($"PostgreSQL did not accept queries within 30s: {e.Message}\n{_server?.Output}", e);
            }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
