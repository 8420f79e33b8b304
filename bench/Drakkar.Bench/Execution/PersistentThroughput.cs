using System.Diagnostics;
using Drakkar.Execution;

namespace Drakkar.Bench.Execution;

/// <summary>
/// The same tasks through the executor pool in spawn mode (a process per task) and in persistent mode (the reference
/// children of docs/executor-protocol.md kept alive), for the side-by-side rows in docs/performance.md.
/// </summary>
internal static class PersistentThroughput
{
    /// <summary>The C# reference child, built beside the bench in the same configuration.</summary>
    public static string CSharpChild => Path.Combine(ChildDirectory, "Drakkar.PersistentChild");

    /// <summary>
    /// The system's Python interpreter, named directly: a version manager's <c>python3</c> shim is a shell script
    /// that costs seconds per start on a loaded machine, which would be measured as spawn mode's cost.
    /// </summary>
    public static string Python => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    /// <summary>The Python reference child (copied next to the C# one).</summary>
    public static string PythonChild => Path.Combine(ChildDirectory, "persistent_child.py");

    private static string ChildDirectory
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Drakkar.sln")))
            {
                directory = directory.Parent;
            }

            var configuration = AppContext.BaseDirectory.Contains("/bin/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
            return Path.Combine(directory!.FullName, "tests", "Drakkar.PersistentChild", "bin", configuration, "net10.0");
        }
    }

    /// <summary>
    /// Runs <paramref name="tasks"/> tasks with <paramref name="args"/> through a fresh pool (process start-up
    /// included) and returns tasks per second.
    /// </summary>
    public static async Task<double> RunAsync(
        ExecutorMode mode, string binary, IReadOnlyList<string> processArgs, IReadOnlyList<string> args, int tasks, int parallelism,
        IReadOnlyDictionary<string, string>? env = null)
    {
        var config = new ExecutorConfig { Mode = mode, BinaryPath = binary, ProcessArgs = [.. processArgs], MaxExecutors = parallelism };
        foreach (var (name, value) in env ?? new Dictionary<string, string>())
        {
            config.Env[name] = value;
        }

        var clock = Stopwatch.StartNew();
        await using (var pool = new ExecutorPool(config))
        {
            var runs = new Task<ExecutorOutcome>[tasks];
            for (var i = 0; i < tasks; i++)
            {
                runs[i] = pool.ExecuteAsync(new ExecutorTask($"t{i}") { Args = args }, i).AsTask();
            }

            foreach (var outcome in await Task.WhenAll(runs))
            {
                if (!outcome.Succeeded)
                {
                    throw new InvalidOperationException($"{outcome.Error.Message}: {outcome.Error.Exception}");
                }
            }
        }

        return tasks / clock.Elapsed.TotalSeconds;
    }
}
