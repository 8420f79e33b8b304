using System.Diagnostics;
using System.Text;
using Drakkar.IntegrationTests.Fixtures;

namespace Drakkar.IntegrationTests.Support;

/// <summary>The sample worker as a separate process: the Native AOT binary (DRAKKAR_SAMPLE_AOT) or the JIT build.</summary>
public sealed class SampleBinary : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly List<(DateTime At, string Line)> _lines = [];

    private SampleBinary(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderr)
            {
                _stderr.AppendLine(e.Data);
                _lines.Add((DateTime.UtcNow, e.Data));
            }
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Every stderr line (the worker's log) with the time it arrived.</summary>
    public IReadOnlyList<(DateTime At, string Line)> StderrLines { get { lock (_stderr) return [.. _lines]; } }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The JIT build next to the tests (always built), or the AOT binary when <paramref name="aot"/>.</summary>
    public static string? PathOf(bool aot) => PathOf("Drakkar.Sample", "drakkar-sample", "DRAKKAR_SAMPLE_AOT", aot);

    /// <summary>
    /// A worker program of this repository: its JIT build under <paramref name="projectDirectory"/> (the tests build it),
    /// or, when <paramref name="aot"/>, the Native AOT binary build/test.sh published and named in <paramref name="aotVariable"/>.
    /// </summary>
    public static string? PathOf(string projectDirectory, string assemblyName, string aotVariable, bool aot)
    {
        if (aot) return Environment.GetEnvironmentVariable(aotVariable) is { Length: > 0 } p ? p : null;
#if RELEASE_BUILD
        const string configuration = "Release";
#else
        const string configuration = "Debug";
#endif
        return Path.Combine(RepoRoot(), projectDirectory, "bin", configuration, "net10.0", assemblyName);
    }

    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Drakkar.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Drakkar.sln not found above " + AppContext.BaseDirectory);
    }

    public static SampleBinary Start(string path, IEnumerable<string> args, string workingDirectory, IDictionary<string, string>? environment = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"sample binary not found at {path}", path);
        var info = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        if (environment is not null) foreach (var (k, v) in environment) info.Environment[k] = v;
        var process = ChildProcesses.Start(info);
        process.StandardInput.Close();
        return new SampleBinary(process);
    }

    public void Signal(int signal) => Posix.Kill(_process.Id, signal);

    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) return false;
        _process.WaitForExit();
        return true;
    }

    public int ExitCode => _process.ExitCode;

    /// <summary>
    /// For a failure message: whether the process still runs (or its exit code), and each of its threads by name, with
    /// its state and the kernel function it waits in (<c>/proc/PID/task</c>): what a worker that stopped making progress
    /// was doing.
    /// </summary>
    public string Describe()
    {
        if (_process.HasExited) return $"pid {_process.Id} exited with {_process.ExitCode}";
        var threads = new List<string>();
        try
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{_process.Id}/task").Order())
            {
                static string Read(string path) { try { return File.ReadAllText(path).Trim(); } catch (IOException) { return "?"; } }
                var stat = Read(Path.Combine(task, "stat"));
                // The state follows the name, which is in parentheses and may hold spaces.
                var state = stat.LastIndexOf(')') is var close and > 0 && close + 2 < stat.Length ? stat[close + 2].ToString() : "?";
                threads.Add($"{Read(Path.Combine(task, "comm"))} {state} {Read(Path.Combine(task, "wchan"))}");
            }
        }
        catch (DirectoryNotFoundException)
        {
            return $"pid {_process.Id} gone";
        }
        return $"pid {_process.Id} running, {threads.Count} threads (name, state, waiting in): {string.Join("; ", threads)}";
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}

internal static partial class Posix
{
    public const int SigTerm = 15;
    public const int SigKill = 9;
    public const int SigInt = 2;

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int KillNative(int pid, int signal);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int RenameAt2(int oldDirectory, string oldPath, int newDirectory, string newPath, uint flags);

    /// <summary>Swaps two paths atomically (renameat2 RENAME_EXCHANGE): a directory and a symlink trade places in one step.</summary>
    public static void Exchange(string a, string b)
    {
        const int currentDirectory = -100;
        const uint exchange = 2;
        if (RenameAt2(currentDirectory, a, currentDirectory, b, exchange) != 0)
            throw new IOException($"renameat2({a}, {b}, RENAME_EXCHANGE) failed with errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
    }

    public static void Kill(int pid, int signal)
    {
        if (KillNative(pid, signal) != 0) throw new InvalidOperationException($"kill({pid}, {signal}) failed");
    }

    /// <summary>Opens <paramref name="path"/> read-only without blocking (a FIFO opens even with no writer).</summary>
    public static IntPtr OpenNonBlocking(string path)
    {
        const int readOnlyNonBlockingCloseOnExec = 0x800 | 0x80000;
        var fd = OpenNative(path, readOnlyNonBlockingCloseOnExec);
        if (fd < 0) throw new IOException($"open({path}) failed with errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        return fd;
    }

    /// <summary>Runs a tool to completion; a non-zero exit fails the test with its stderr.</summary>
    public static void Run(string tool, params string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo(tool) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = ChildProcesses.Start(info);
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{tool} {string.Join(' ', args)} exited {process.ExitCode}: {stderr}");
    }
}
