using System.Text;

namespace Drakkar.Execution.Posix;

/// <summary>
/// The real <see cref="IProcessRunner"/>: spawns the child in its own session, feeds stdin, drains both outputs
/// concurrently, and on timeout or cancellation kills the child's whole process group.
/// </summary>
internal sealed class PosixProcessRunner(TimeProvider timeProvider) : IProcessRunner
{
    public static PosixProcessRunner Instance { get; } = new(TimeProvider.System);

    public async Task<ProcessRun> RunAsync(ProcessSpec spec, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // Made before the child starts: a timer that cannot be made must not leave a process behind.
        using var timeout = new CancellationTokenSource(spec.Timeout, timeProvider);
        var started = timeProvider.GetTimestamp();
        ChildProcess child;
        try
        {
            child = ChildProcess.Start(spec.FileName, spec.Args, spec.Environment, spec.Stdin is not null);
        }
        catch (ProcessSpawnException e)
        {
            return new ProcessRun(
                ProcessRunStatus.SpawnFailed, null, null, "", "", timeProvider.GetElapsedTime(started), e.Message);
        }

        using var abort = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        var exit = child.WaitForExitAsync();
        var stdin = child.Stdin is { } input ? WriteStdinAsync(input, spec.Stdin!, abort.Token) : Task.CompletedTask;
        var stdout = OutputCapture.ReadAsync(child.Stdout, spec.MaxOutputBytes, abort.Token);
        var stderr = OutputCapture.ReadAsync(child.Stderr, spec.MaxOutputBytes, abort.Token);

        var exitedInTime = true;
        try
        {
            await exit.WaitAsync(abort.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            exitedInTime = false;
        }

        // Killing the group after a normal exit too: whatever the task left running in its group (a background
        // job, a hung helper) dies with it instead of outliving the task. The leader is not reaped yet, so its
        // pid cannot have been reused for another group.
        child.KillGroup();
        await exit.ConfigureAwait(false);
        var exitCode = child.Reap();

        var output = await stdout.ConfigureAwait(false);
        var errors = await stderr.ConfigureAwait(false);
        await stdin.ConfigureAwait(false);
        var duration = timeProvider.GetElapsedTime(started);

        cancellationToken.ThrowIfCancellationRequested();
        // A child that exited but whose output never reached end-of-file (a descendant that left the group still
        // holds the pipe) also counts as timed out: its result is incomplete.
        var status = exitedInTime && output.Complete && errors.Complete
            ? ProcessRunStatus.Exited
            : ProcessRunStatus.TimedOut;
        return new ProcessRun(
            status,
            child.Pid,
            status == ProcessRunStatus.Exited ? exitCode : null,
            output.Text,
            errors.Text,
            duration)
        {
            StdoutTruncated = output.Truncated,
            StderrTruncated = errors.Truncated,
        };
    }

    private static async Task WriteStdinAsync(Stream stdin, string text, CancellationToken cancellationToken)
    {
        try
        {
            await stdin.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The child closed its stdin without reading all of it (EPIPE); that is its choice, not a failure.
        }
        catch (OperationCanceledException)
        {
            // Timed out or cancelled while the child was not reading; the kill that follows handles it.
        }
        finally
        {
            try
            {
                await stdin.DisposeAsync().ConfigureAwait(false);
            }
            catch (IOException)
            {
                // Closing a pipe whose reader is gone can report EPIPE again; nothing is left to do.
            }
        }
    }
}
