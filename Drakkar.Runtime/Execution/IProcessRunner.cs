namespace Drakkar.Execution;

/// <summary>
/// Runs one child process to completion. The pool's only dependency on the operating system: pipeline tests can
/// substitute a runner that answers without spawning anything.
/// </summary>
internal interface IProcessRunner
{
    /// <summary>
    /// Runs <paramref name="spec"/> once. Never throws for a process-level failure (timeout, spawn failure,
    /// non-zero exit): those are <see cref="ProcessRun"/> statuses. When <paramref name="cancellationToken"/>
    /// fires, the child's process group is killed and reaped, then <see cref="OperationCanceledException"/> is
    /// thrown.
    /// </summary>
    Task<ProcessRun> RunAsync(ProcessSpec spec, CancellationToken cancellationToken);
}

/// <summary>What to run.</summary>
/// <param name="FileName">The binary: a path, or a name searched on the worker's PATH.</param>
/// <param name="Args">Arguments, passed as-is (no shell).</param>
/// <param name="Stdin">Text written (UTF-8) to the child's stdin before it is closed; null gives an empty stdin.</param>
/// <param name="Environment">The child's complete environment.</param>
/// <param name="Timeout">After this long the child's process group is killed.</param>
/// <param name="MaxOutputBytes">Per-stream capture limit.</param>
internal sealed record ProcessSpec(
    string FileName,
    IReadOnlyList<string> Args,
    string? Stdin,
    IReadOnlyDictionary<string, string> Environment,
    TimeSpan Timeout,
    int MaxOutputBytes);

internal enum ProcessRunStatus
{
    /// <summary>The process exited on its own (<see cref="ProcessRun.ExitCode"/> says how).</summary>
    Exited,
    /// <summary>The process outlived <see cref="ProcessSpec.Timeout"/>; its process group was killed.</summary>
    TimedOut,
    /// <summary>The process never started (<see cref="ProcessRun.Error"/> says why).</summary>
    SpawnFailed,
    /// <summary>A persistent process broke the frame protocol (<see cref="ProcessRun.Error"/> says how).</summary>
    ProtocolError,
}

/// <summary>How one run ended.</summary>
/// <param name="Status">Exited, timed out, or never started.</param>
/// <param name="Pid">The child's pid (null when it never started).</param>
/// <param name="ExitCode">The exit code (128 + signal when killed by a signal); null unless the status is
/// <see cref="ProcessRunStatus.Exited"/> and the code was observed.</param>
/// <param name="Stdout">Captured stdout (up to the limit).</param>
/// <param name="Stderr">Captured stderr (up to the limit).</param>
/// <param name="Duration">From spawn to reaping.</param>
/// <param name="Error">Why a spawn failed or the protocol broke; for an exit, what else is known about it.</param>
internal sealed record ProcessRun(
    ProcessRunStatus Status,
    int? Pid,
    int? ExitCode,
    string Stdout,
    string Stderr,
    TimeSpan Duration,
    string? Error = null)
{
    public bool StdoutTruncated { get; init; }

    public bool StderrTruncated { get; init; }
}
