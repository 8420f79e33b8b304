using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Drakkar.Generators.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL 15 cluster for this test class: initdb into a temp directory, start on a free port with
/// trust auth, drop everything on dispose. As root, the server runs as the postgres user (it refuses root).
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private const string BinDirectory = "/usr/lib/postgresql/15/bin";

    private readonly string _root = Path.Combine(Path.GetTempPath(), "drakkar-gen-pg-" + Guid.NewGuid().ToString("N")[..12]);
    private string DataDirectory => Path.Combine(_root, "data");

    public string ConnectionString { get; private set; } = "";

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(Path.Combine(BinDirectory, "initdb")))
        {
            throw new InvalidOperationException($"PostgreSQL 15 is not installed at {BinDirectory} (apt-get install postgresql-15).");
        }
        Directory.CreateDirectory(_root);
        if (Environment.UserName == "root") Run("chown", "-R", "postgres:postgres", _root);

        RunServerTool("initdb", "-D", DataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync");
        var port = FreePort();
        RunServerTool("pg_ctl", "-D", DataDirectory, "-l", Path.Combine(_root, "server.log"), "-w", "-t", "60", "start",
            "-o", $"-p {port} -k {_root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off");

        ConnectionString = $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Pooling=true";
        DataSource = NpgsqlDataSource.Create(ConnectionString);
        await using var connection = await DataSource.OpenConnectionAsync();
    }

    public async Task DisposeAsync()
    {
        if (DataSource is not null) await DataSource.DisposeAsync();
        if (Directory.Exists(DataDirectory))
        {
            try
            {
                RunServerTool("pg_ctl", "-D", DataDirectory, "-m", "immediate", "-w", "stop");
            }
            finally
            {
                Directory.Delete(_root, recursive: true);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void RunServerTool(string tool, params string[] arguments)
    {
        var path = Path.Combine(BinDirectory, tool);
        if (Environment.UserName == "root") Run("runuser", ["-u", "postgres", "--", path, .. arguments]);
        else Run(path, arguments);
    }

    private static void Run(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + file);
        // pg_ctl's server keeps the pipes open; read them asynchronously so waiting for the tool cannot deadlock.
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish");
        }
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{file} {string.Join(' ', arguments)} failed ({process.ExitCode}): {error.Result}{output.Result}");
        }
    }
}
