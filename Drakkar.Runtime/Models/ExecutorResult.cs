namespace Drakkar;

/// <summary>A task that ran (or was precomputed) and exited with code 0.</summary>
public sealed record ExecutorResult(
    ExecutorTask Task,
    int ExitCode,
    string Stdout,
    string Stderr,
    TimeSpan Duration,
    int? Pid)
{
    /// <summary>True when stdout exceeded <c>executor.max_output_bytes</c> and was cut.</summary>
    public bool StdoutTruncated { get; init; }

    /// <summary>True when stderr exceeded <c>executor.max_output_bytes</c> and was cut.</summary>
    public bool StderrTruncated { get; init; }

    /// <summary>
    /// <see cref="Stdout"/> read as one JSON value of a <c>[Payload]</c> type, with the type's generated reader (no
    /// reflection: safe under Native AOT). Whitespace after the value is ignored.
    /// </summary>
    /// <exception cref="FormatException">Stdout is empty or not a valid <typeparamref name="T"/>; the message names the
    /// task and why. Thrown from <c>OnTaskComplete</c>, it makes the attempt a <c>HookFailed</c> error for <c>OnError</c>.</exception>
    public T StdoutAs<T>() where T : class, IPayload<T>
    {
        var (payload, error) = PayloadDecoder.Decode<T>(System.Text.Encoding.UTF8.GetBytes(Stdout));
        return payload ?? throw new FormatException($"task {Task.TaskId}: stdout: {error}" +
            (StdoutTruncated ? " (stdout was cut at executor.max_output_bytes)" : ""));
    }
}

/// <summary>Why a task failed.</summary>
public enum ExecutorFailure
{
    /// <summary>The process exited with a non-zero code.</summary>
    NonZeroExit,
    /// <summary>The process ran past <c>executor.task_timeout_seconds</c> and was killed.</summary>
    Timeout,
    /// <summary>The process could not be started (missing binary, not executable).</summary>
    SpawnFailed,
    /// <summary>Neither the task nor <c>executor.binary_path</c> names a binary.</summary>
    NoBinary,
    /// <summary>A hook failed while handling the task's result.</summary>
    HookFailed,
    /// <summary>A persistent executor process broke the protocol (an invalid frame, an answer for another task); it was replaced.</summary>
    ProtocolError,
}

/// <summary>A failed task attempt.</summary>
public sealed record ExecutorError(
    ExecutorTask Task,
    ExecutorFailure Failure,
    int? ExitCode,
    string Stderr,
    string? Exception,
    int? Pid)
{
    /// <summary>Which attempt failed (1 for the first run).</summary>
    public int Attempt { get; init; } = 1;

    /// <summary>How long the attempt ran before it failed (zero when it never started).</summary>
    public TimeSpan Duration { get; init; }

    /// <summary>A one-line description for logs and the DLQ.</summary>
    public string Message => Failure switch
    {
        ExecutorFailure.NonZeroExit => $"task {Task.TaskId} exited with code {ExitCode}",
        ExecutorFailure.Timeout => $"task {Task.TaskId} timed out",
        ExecutorFailure.SpawnFailed => $"task {Task.TaskId} could not start: {Exception}",
        ExecutorFailure.NoBinary => $"task {Task.TaskId} has no binary: set executor.binary_path or the task's BinaryPath",
        ExecutorFailure.HookFailed => $"task {Task.TaskId}: a hook failed: {Exception}",
        ExecutorFailure.ProtocolError => $"task {Task.TaskId}: executor protocol error: {Exception}",
        _ => $"task {Task.TaskId} failed",
    };
}
