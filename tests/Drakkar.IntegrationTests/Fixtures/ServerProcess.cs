using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>A server started for the tests: its output is kept for error messages, and it dies with the fixture.</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServerProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public bool HasExited => _process.HasExited;

    public static ServerProcess Start(string fileName, IEnumerable<string> args, string? user = null)
    {
        var info = new ProcessStartInfo(user is null ? fileName : "runuser")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (user is not null)
        {
            info.ArgumentList.Add("-u");
            info.ArgumentList.Add(user);
            info.ArgumentList.Add("--");
            info.ArgumentList.Add(fileName);
        }
        foreach (var a in args) info.ArgumentList.Add(a);
        var process = ChildProcesses.Start(info);
        process.StandardInput.Close();
        return new ServerProcess(process);
    }

    /// <summary>Waits until a TCP connection to <paramref name="port"/> succeeds, failing with the server's output.</summary>
    public void WaitForPort(int port, string what, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"{what} exited with code {_process.ExitCode} before accepting connections:\n{Output}");
            try
            {
                using var client = new TcpClient();
                client.Connect("127.0.0.1", port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(25);
            }
        }
        throw new TimeoutException($"{what} did not accept connections on port {port} within {timeout.TotalSeconds}s:\n{Output}");
    }

    /// <summary>Runs a command to completion and throws with its output when it fails.</summary>
    public static string Run(string fileName, IEnumerable<string> args, string? user = null)
    {
        using var server = Start(fileName, args, user);
        if (!server._process.WaitForExit(TimeSpan.FromSeconds(120)))
            throw new TimeoutException($"{fileName} did not finish within 120s:\n{server.Output}");
        server._process.WaitForExit();
        if (server._process.ExitCode != 0)
            throw new InvalidOperationException($"{fileName} {string.Join(' ', args)} failed with exit code {server._process.ExitCode}:\n{server.Output}");
        return server.Output;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }
}
