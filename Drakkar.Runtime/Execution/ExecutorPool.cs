using Drakkar.Pipeline;
using Drakkar.Execution.Persistent;
using Drakkar.Execution.Posix;
using Drakkar.Observability.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Execution;

/// <summary>
/// The worker's one pool of <c>executor.max_executors</c> process slots, shared by every partition (E1). Each
/// call runs one attempt of one task; retry, skip and replacement are the caller's decisions. In spawn mode a slot
/// runs a new process per task; in persistent mode (E9) it hands the task to a long-lived process as a frame.
/// </summary>
internal sealed class ExecutorPool : ITaskExecutor, IAsyncDisposable
{
    private const int MaxTimerSeconds = 4_294_967;

    private readonly IProcessRunner _runner;
    private readonly ILogger _logger;
    private readonly PriorityGate _gate;
    private readonly string? _binaryPath;
    private readonly TimeSpan _timeout;
    private readonly int _timeoutSeconds;
    private readonly int _maxOutputBytes;
    private readonly Dictionary<string, string> _baseEnvironment;
    private readonly PersistentProcesses? _persistent;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Attempts in flight plus one reference held by the pool itself until disposal; reaching zero means every
    // child is gone. Zero also marks the pool closed to new attempts.
    private int _references = 1;
    private int _disposed;

    /// <param name="config">The executor section; read once here.</param>
    /// <param name="runner">Runs the processes; the real POSIX runner when null.</param>
    /// <param name="logger">Where timeouts and spawn failures are logged.</param>
    /// <param name="parentEnvironment">The environment children may inherit; the worker's own when null.</param>
    /// <param name="metrics">Where persistent processes' starts, failures and recycling are counted; nowhere when null.</param>
    public ExecutorPool(
        ExecutorConfig config,
        IProcessRunner? runner = null,
        ILogger<ExecutorPool>? logger = null,
        IReadOnlyDictionary<string, string>? parentEnvironment = null,
        DrakkarMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _runner = runner ?? PosixProcessRunner.Instance;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _gate = new PriorityGate(config.MaxExecutors);
        _binaryPath = string.IsNullOrWhiteSpace(config.BinaryPath) ? null : config.BinaryPath;
        if (config.TaskTimeoutSeconds < 1)
        {
            throw new ArgumentOutOfRangeException(
                nameof(config), config.TaskTimeoutSeconds, "executor.task_timeout_seconds must be at least 1.");
        }

        _timeoutSeconds = config.TaskTimeoutSeconds;
        // Timers cannot run past ~49.7 days (uint milliseconds); any longer limit means "never" in practice.
        _timeout = config.TaskTimeoutSeconds > MaxTimerSeconds
            ? Timeout.InfiniteTimeSpan
            : TimeSpan.FromSeconds(config.TaskTimeoutSeconds);
        _maxOutputBytes = config.MaxOutputBytes;
        _baseEnvironment = ChildEnvironment.Base(
            parentEnvironment ?? ChildEnvironment.CurrentProcess(),
            config.EnvInheritParent,
            config.EnvInheritDeny,
            config.Env);
        _persistent = config.Mode == ExecutorMode.Persistent
            ? new PersistentProcesses(config, _baseEnvironment, _timeout, _logger, metrics?.ExecutorProcessEvents)
            : null;
    }

    public int MaxExecutors => _gate.Capacity;

    /// <summary>Attempts holding a slot (running a process).</summary>
    public int ActiveCount => _gate.InUse;

    /// <summary>Attempts queued for a slot.</summary>
    public int WaitingCount => _gate.Waiting;

    /// <summary>Persistent mode: processes alive (idle or busy); spawn mode: 0.</summary>
    public int PersistentProcessCount => _persistent?.LiveCount ?? 0;

    /// <summary>
    /// Runs one attempt of <paramref name="task"/>. A precomputed task completes at once without a slot (E7);
    /// any other waits for a slot in <paramref name="priority"/> order (lower first, FIFO on ties), then runs.
    /// </summary>
    /// <param name="task">The task to run.</param>
    /// <param name="priority">The scheduling key (usually the handler's <c>TaskPriority</c>).</param>
    /// <param name="attempt">The attempt number recorded on a failure (1 for the first run).</param>
    /// <param name="cancellationToken">Cancels a waiting attempt, or kills a running one's process group; the
    /// returned task then throws <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="ObjectDisposedException">The pool is shut down (precomputed tasks still complete).</exception>
    public ValueTask<ExecutorOutcome> ExecuteAsync(
        ExecutorTask task, long priority, int attempt = 1, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (task.Precomputed is { } precomputed)
        {
            return new ValueTask<ExecutorOutcome>(FromPrecomputed(task, precomputed, attempt));
        }

        var binary = string.IsNullOrWhiteSpace(task.BinaryPath) ? _binaryPath : task.BinaryPath;
        if (binary is null)
        {
            return new ValueTask<ExecutorOutcome>(ExecutorOutcome.Failure(
                new ExecutorError(task, ExecutorFailure.NoBinary, null, "", null, null) { Attempt = attempt }));
        }

        AddReference();
        return new ValueTask<ExecutorOutcome>(RunAsync(task, binary, priority, attempt, cancellationToken));
    }

    /// <summary>
    /// Kills every running process group and ends the persistent processes at once, without their grace: for a stop
    /// whose bound (<c>drain_timeout_seconds</c>) ran out before <see cref="DisposeAsync"/> finished, so that no
    /// process outlives the worker.
    /// </summary>
    internal Task EndNowAsync()
    {
        try
        {
            _shutdown.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed already: every running process was reaped.
        }

        return _persistent?.EndNowAsync() ?? Task.CompletedTask;
    }

    /// <summary>
    /// Cancels every waiting attempt, kills every running process group, and returns once all of them are reaped;
    /// in persistent mode idle processes then get end-of-file on stdin and a grace period to exit.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            await _drained.Task.ConfigureAwait(false);
            return;
        }

        await _shutdown.CancelAsync().ConfigureAwait(false);
        ReleaseReference();
        await _drained.Task.ConfigureAwait(false);
        if (_persistent is not null)
        {
            await _persistent.DisposeAsync().ConfigureAwait(false);
        }

        _shutdown.Dispose();
    }

    private async Task<ExecutorOutcome> RunAsync(
        ExecutorTask task, string binary, long priority, int attempt, CancellationToken cancellationToken)
    {
        try
        {
            using var linked = cancellationToken.CanBeCanceled
                ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _shutdown.Token)
                : null;
            var token = linked?.Token ?? _shutdown.Token;
            await _gate.WaitAsync(priority, token).ConfigureAwait(false);
            ProcessRun run;
            Task? slotFreed = null;
            try
            {
                if (_persistent is not null)
                {
                    (run, slotFreed) = await _persistent.RunAsync(task, binary, token).ConfigureAwait(false);
                }
                else
                {
                    run = await _runner.RunAsync(
                        new ProcessSpec(
                            binary,
                            task.Args,
                            task.Stdin,
                            ChildEnvironment.ForTask(_baseEnvironment, task.EnvOrEmpty),
                            _timeout,
                            _maxOutputBytes),
                        token).ConfigureAwait(false);
                }
            }
            finally
            {
                if (slotFreed is null || slotFreed.IsCompleted)
                {
                    _gate.Release();
                }
                else
                {
                    _ = slotFreed.ContinueWith(static (_, gate) => ((PriorityGate)gate!).Release(), _gate, CancellationToken.None,
                        TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }
            }

            return ToOutcome(task, run, attempt);
        }
        finally
        {
            ReleaseReference();
        }
    }

    private ExecutorOutcome ToOutcome(ExecutorTask task, ProcessRun run, int attempt)
    {
        switch (run.Status)
        {
            case ProcessRunStatus.Exited when run.ExitCode == 0:
                ExecutorLog.TaskSucceeded(_logger, task.TaskId, run.Pid, run.Duration.TotalMilliseconds);
                return ExecutorOutcome.Success(
                    new ExecutorResult(task, 0, run.Stdout, run.Stderr, run.Duration, run.Pid)
                    {
                        StdoutTruncated = run.StdoutTruncated,
                        StderrTruncated = run.StderrTruncated,
                    });

            case ProcessRunStatus.Exited:
                ExecutorLog.TaskExitedNonZero(_logger, task.TaskId, run.Pid, run.ExitCode, attempt);
                return ExecutorOutcome.Failure(
                    new ExecutorError(
                        task,
                        ExecutorFailure.NonZeroExit,
                        run.ExitCode,
                        run.Stderr,
                        run.Error ?? (run.ExitCode is null ? "the exit status was lost: the worker must not run with SIGCHLD ignored" : null),
                        run.Pid)
                    { Attempt = attempt, Duration = run.Duration });

            case ProcessRunStatus.TimedOut:
                ExecutorLog.TaskTimedOut(_logger, task.TaskId, run.Pid, _timeoutSeconds, attempt);
                return ExecutorOutcome.Failure(
                    new ExecutorError(
                        task,
                        ExecutorFailure.Timeout,
                        null,
                        run.Stderr,
                        run.Error ?? $"timed out after {_timeoutSeconds}s (executor.task_timeout_seconds); its process group was killed",
                        run.Pid)
                    { Attempt = attempt, Duration = run.Duration });

            case ProcessRunStatus.ProtocolError:
                ExecutorLog.TaskProtocolError(_logger, task.TaskId, run.Error ?? "", attempt);
                return ExecutorOutcome.Failure(
                    new ExecutorError(task, ExecutorFailure.ProtocolError, null, run.Stderr, run.Error, run.Pid)
                    { Attempt = attempt, Duration = run.Duration });

            default:
                ExecutorLog.TaskSpawnFailed(_logger, task.TaskId, run.Error ?? "", attempt);
                return ExecutorOutcome.Failure(
                    new ExecutorError(task, ExecutorFailure.SpawnFailed, null, run.Stderr, run.Error, run.Pid)
                    { Attempt = attempt, Duration = run.Duration });
        }
    }

    private static ExecutorOutcome FromPrecomputed(ExecutorTask task, PrecomputedResult precomputed, int attempt) =>
        precomputed.ExitCode == 0
            ? ExecutorOutcome.Success(new ExecutorResult(
                task, 0, precomputed.Stdout, precomputed.Stderr, precomputed.Duration, null))
            : ExecutorOutcome.Failure(new ExecutorError(
                task, ExecutorFailure.NonZeroExit, precomputed.ExitCode, precomputed.Stderr, null, null)
            { Attempt = attempt, Duration = precomputed.Duration });

    private void AddReference()
    {
        var current = Volatile.Read(ref _references);
        while (true)
        {
            ObjectDisposedException.ThrowIf(current == 0 || Volatile.Read(ref _disposed) != 0, this);
            var seen = Interlocked.CompareExchange(ref _references, current + 1, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private void ReleaseReference()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            _drained.TrySetResult();
        }
    }
}
