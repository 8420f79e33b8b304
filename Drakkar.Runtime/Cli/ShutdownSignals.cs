using System.Runtime.InteropServices;

namespace Drakkar.Cli;

/// <summary>
/// SIGTERM and SIGINT for a long-running command: the first signal cancels <see cref="Token"/> (finish what is in
/// flight, then exit cleanly); a second one means "now": it kills the running task processes and exits with 130.
/// </summary>
internal sealed class ShutdownSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly TextWriter _stderr;
    private readonly PosixSignalRegistration _sigterm;
    private readonly PosixSignalRegistration _sigint;
    private int _signals;

    public ShutdownSignals(TextWriter stderr)
    {
        _stderr = stderr;
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
    }

    public CancellationToken Token => _stop.Token;

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        if (Interlocked.Increment(ref _signals) == 1)
        {
            _stop.Cancel();
            return;
        }
        _stderr.WriteLine("second signal: exiting without draining");
        // Task processes run in process groups of their own, out of reach of the signal: stop them with the worker.
        Execution.Posix.ChildProcess.KillAllGroups();
        Environment.Exit(130);
    }

    public void Dispose()
    {
        _sigterm.Dispose();
        _sigint.Dispose();
        _stop.Dispose();
    }
}
