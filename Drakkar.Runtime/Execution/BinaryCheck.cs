using Drakkar.Execution.Posix;
using Drakkar.Hosting;

namespace Drakkar.Execution;

/// <summary>
/// The start-up check of <c>executor.binary_path</c>: a path that cannot be run is found before the worker consumes
/// anything, instead of as every message's task failing to start.
/// </summary>
internal static class BinaryCheck
{
    /// <summary>
    /// Throws unless <paramref name="binaryPath"/> (when set) is a file the worker may run: a path with a slash as
    /// given (relative to the working directory), a bare name searched on the worker's <c>PATH</c>, as the spawn does.
    /// </summary>
    /// <exception cref="WorkerStartupException">It is missing, a directory, or not executable.</exception>
    public static void Require(string? binaryPath)
    {
        if (string.IsNullOrWhiteSpace(binaryPath)) return;
        if (binaryPath.Contains('/'))
        {
            if (!Runnable(binaryPath))
                throw new WorkerStartupException($"executor.binary_path '{binaryPath}' is not a file this worker can run ({Reason(binaryPath)}); " +
                    "fix the path, or leave binary_path out when every task names its own binary");
            return;
        }
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var directory in path.Split(':'))
            if (Runnable(Path.Combine(directory.Length == 0 ? "." : directory, binaryPath))) return;
        throw new WorkerStartupException($"executor.binary_path '{binaryPath}' is not found on the worker's PATH ({path}); " +
            "give its full path, or leave binary_path out when every task names its own binary");
    }

    private static bool Runnable(string file) => File.Exists(file) && LibC.access(file, LibC.X_OK) == 0;

    private static string Reason(string file) =>
        Directory.Exists(file) ? "it is a directory" : !File.Exists(file) ? "no such file" : "it is not executable by this worker";
}
