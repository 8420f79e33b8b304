using Microsoft.Extensions.Logging;

namespace Drakkar.Execution;

internal static partial class ExecutorLog
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Debug, Message = "Task {TaskId} (pid {Pid}) exited with code 0 after {DurationMs:F1} ms")]
    public static partial void TaskSucceeded(ILogger logger, string taskId, int? pid, double durationMs);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Task {TaskId} (pid {Pid}) exited with code {ExitCode} on attempt {Attempt}")]
    public static partial void TaskExitedNonZero(ILogger logger, string taskId, int? pid, int? exitCode, int attempt);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Task {TaskId} (pid {Pid}) timed out after {TimeoutSeconds}s on attempt {Attempt}; its process group was killed")]
    public static partial void TaskTimedOut(ILogger logger, string taskId, int? pid, int timeoutSeconds, int attempt);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Task {TaskId} could not start on attempt {Attempt}: {Reason}")]
    public static partial void TaskSpawnFailed(ILogger logger, string taskId, string reason, int attempt);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Information, Message = "Executor process {Binary} (pid {Pid}) started and is ready")]
    public static partial void ProcessStarted(ILogger logger, string binary, int pid);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "Executor process {Binary} failed {Failures} time(s) in a row; restarting it in {DelayMs:F0} ms")]
    public static partial void ProcessRestartDelayed(ILogger logger, string binary, int failures, double delayMs);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Information, Message = "Executor process {Binary} (pid {Pid}) is replaced after {Tasks} tasks: {Reason}")]
    public static partial void ProcessRecycled(ILogger logger, string binary, int pid, int tasks, string reason);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Information, Message = "Executor process {Binary} (pid {Pid}) stderr: {Line}")]
    public static partial void ChildStderr(ILogger logger, string binary, int pid, string line);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Warning, Message = "Executor process {Binary} (pid {Pid}) exited with code {ExitCode} while idle; a new one is started")]
    public static partial void ProcessExitedIdle(ILogger logger, string binary, int pid, string exitCode);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Warning, Message = "Executor process {Binary} (pid {Pid}) did not exit on end-of-file {Within}; it was killed with its group (a persistent child should exit when its stdin ends)")]
    public static partial void ProcessKilledAtEnd(ILogger logger, string binary, int pid, string within);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Warning, Message = "Task {TaskId} failed on attempt {Attempt}: {Reason}")]
    public static partial void TaskProtocolError(ILogger logger, string taskId, string reason, int attempt);
}
