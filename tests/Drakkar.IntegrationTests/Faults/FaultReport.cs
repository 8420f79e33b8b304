using System.Globalization;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// A fault scenario's outcome as one row of docs/reliability.md: appended to the file DRAKKAR_FAULT_REPORT names
/// (build/faults.sh sets it and renders the page); nothing is written when it is unset.
/// </summary>
internal static class FaultReport
{
    private static readonly Lock Gate = new();

    public static void Add(string scenario, string input, string delivered, int dlq, int duplicates, int lost, string recovery)
    {
        if (Environment.GetEnvironmentVariable("DRAKKAR_FAULT_REPORT") is not { Length: > 0 } path) return;
        var row = string.Create(CultureInfo.InvariantCulture,
            $"| {scenario} | {input} | {delivered} | {dlq} | {duplicates} | {lost} | {recovery} |\n");
        lock (Gate) File.AppendAllText(path, row);
    }
}
