using System.Diagnostics;
using System.Reflection;

namespace Drakkar.Bench.Report;

/// <summary>
/// The report measures workers under the GC settings a Drakkar worker is built with: Drakkar.props builds a young-
/// generation budget (<c>GCgen0size</c>) into every Native AOT worker, and a JIT process such as this one can take it
/// only from the environment, so <c>report</c> starts itself again with it set. Baselines run in the same process (or
/// inherit the environment), so both sides of a row get the same GC.
/// </summary>
internal static class WorkerGc
{
    private const string Variable = "DOTNET_GCgen0size";

    /// <summary>The budget Drakkar.props gives a worker (hex bytes), or empty when it is switched off.</summary>
    private static string Budget => typeof(WorkerGc).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .FirstOrDefault(a => a.Key == "DrakkarGCgen0size")?.Value ?? "";

    /// <summary>True when this process already runs with the worker's GC settings (or there are none to apply).</summary>
    public static bool RunsUnderIt() => Budget.Length == 0 || Environment.GetEnvironmentVariable(Variable) is not null;

    /// <summary>Runs this program again with <paramref name="args"/> and the worker's GC settings; returns its exit code.</summary>
    public static async Task<int> RunAgainUnderItAsync(string[] args)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment[Variable] = Budget;
        using var child = Process.Start(start)!;
        await child.WaitForExitAsync();
        return child.ExitCode;
    }
}
