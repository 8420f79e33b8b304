using Drakkar.Execution;

namespace Drakkar.Runtime.Tests.Execution;

/// <summary>Helpers for tests that run real child processes.</summary>
internal static class ProcessTestSupport
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    public static ExecutorConfig Config(int maxExecutors = 2, int timeoutSeconds = 10, int maxOutputBytes = 1 << 20) => new()
    {
        BinaryPath = "/bin/sh",
        MaxExecutors = maxExecutors,
        TaskTimeoutSeconds = timeoutSeconds,
        MaxOutputBytes = maxOutputBytes,
    };

    public static ExecutorPool Pool(ExecutorConfig config) => new(config);

    public static ExecutorTask Shell(string script, string? id = null) =>
        new(id ?? Drakkar.TaskId.New("t")) { Args = ["-c", script] };

    /// <summary>Polls <paramref name="condition"/> until it holds, failing with <paramref name="what"/> at the deadline.</summary>
    public static async Task Until(Func<bool> condition, string what, TimeSpan? deadline = null)
    {
        var limit = DateTime.UtcNow + (deadline ?? Deadline);
        while (!condition())
        {
            if (DateTime.UtcNow > limit)
            {
                Assert.Fail($"timed out waiting until {what}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>True while <paramref name="pid"/> is a live process (a zombie is dead, only not yet reaped).</summary>
    public static bool IsAlive(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return false;
        }

        var state = stat[(stat.LastIndexOf(')') + 2)..][0];
        return state is not ('Z' or 'X');
    }

    public static bool Exists(int pid) => Directory.Exists($"/proc/{pid}");

    public static async Task<int> ReadPidFile(string path)
    {
        await Until(() => File.Exists(path) && File.ReadAllText(path).EndsWith('\n'), $"{path} is written");
        return int.Parse(File.ReadAllText(path).Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}

/// <summary>A scratch directory removed after the test.</summary>
internal sealed class ScratchDirectory : IDisposable
{
    public ScratchDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "drakkar-exec-" + Guid.NewGuid().ToString("N"));

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is not worth failing a test over.
        }
    }
}
