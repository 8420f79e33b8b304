using System.Diagnostics;
using Drakkar.Execution.Posix;

namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>
/// How the tests start a process: under the runtime's <see cref="SpawnGate"/>, like the executor's own children, so
/// that no test's child is between fork and exec while another test takes an embedded broker down (the broker's
/// re-bind would fail and librdkafka would abort the test host).
/// </summary>
internal static class ChildProcesses
{
    public static Process Start(ProcessStartInfo info)
    {
        using (SpawnGate.Spawning())
            return Process.Start(info) ?? throw new InvalidOperationException($"could not start {info.FileName}");
    }
}
