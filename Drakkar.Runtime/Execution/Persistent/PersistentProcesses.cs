using System.Globalization;
using Drakkar.Execution.Posix;
using Drakkar.Observability.Metrics;
using Microsoft.Extensions.Logging;

namespace Drakkar.Execution.Persistent;

/// <summary>
/// The long-lived processes of <c>executor.mode: persistent</c> (E9). The pool's priority gate decides who runs;
/// this class decides which process serves the run: an idle one of the task's binary, else a new one, started on
/// demand. Never more processes live than the gate has slots.
/// </summary>
/// <remarks>
/// A process that crashed, broke the protocol, timed out or never became ready is killed and forgotten, and the
/// next start waits <c>restart_backoff_ms</c>, doubling per failure in a row up to <c>restart_backoff_max_ms</c>;
/// a start that reaches the ready line, or an answered task, resets the count. A healthy process is replaced after
/// <c>max_tasks_per_process</c> tasks or when its resident memory passes <c>max_rss_mb</c>.
/// </remarks>
internal sealed class PersistentProcesses : IAsyncDisposable
{
    /// <summary>How long a process has to exit after its stdin is closed (recycling, shutdown) before it is killed.</summary>
    internal static readonly TimeSpan ExitGrace = TimeSpan.FromSeconds(5);

    private readonly int _capacity;
    private readonly IReadOnlyList<string> _processArgs;
    private readonly Dictionary<string, string> _environment;
    private readonly TimeSpan _readyTimeout;
    private readonly TimeSpan _taskTimeout;
    private readonly int _maxOutputBytes;
    private readonly int _maxTasksPerProcess;
    private readonly int _maxRssMb;
    private readonly TimeSpan _backoff;
    private readonly TimeSpan _backoffMax;
    private readonly ILogger _logger;
    private readonly Counter? _events;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Stack<PersistentChild>> _idle = new(StringComparer.Ordinal);
    // Cancelled by EndNowAsync: processes being ended lose the rest of their grace, and none goes back to idle.
    private readonly CancellationTokenSource _hurry = new();
    // The ends of idle processes started by DisposeAsync and EndNowAsync, under _lock.
    private readonly List<Task> _ending = [];
    private int _live;
    private int _failuresInARow;

    public PersistentProcesses(ExecutorConfig config, Dictionary<string, string> baseEnvironment, TimeSpan taskTimeout, ILogger logger, Counter? events = null)
    {
        _capacity = config.MaxExecutors;
        _processArgs = [.. config.ProcessArgs];
        _environment = new Dictionary<string, string>(baseEnvironment, StringComparer.Ordinal)
        {
            [ExecutorFrames.ProtocolVariable] = ExecutorFrames.ProtocolVersion,
        };
        _readyTimeout = TimeSpan.FromSeconds(config.ReadyTimeoutSeconds);
        _taskTimeout = taskTimeout;
        _maxOutputBytes = config.MaxOutputBytes;
        _maxTasksPerProcess = config.MaxTasksPerProcess;
        _maxRssMb = config.MaxRssMb;
        _backoff = TimeSpan.FromMilliseconds(config.RestartBackoffMs);
        _backoffMax = TimeSpan.FromMilliseconds(Math.Max(config.RestartBackoffMs, config.RestartBackoffMaxMs));
        _logger = logger;
        _events = events;
    }

    /// <summary>
    /// Processes alive, idle or serving a task. An idle process that exited on its own is not counted, though it is
    /// reaped and replaced only when the next task of its binary comes.
    /// </summary>
    public int LiveCount
    {
        get
        {
            lock (_lock)
            {
                var live = _live;
                foreach (var stack in _idle.Values)
                {
                    foreach (var child in stack)
                    {
                        if (child.HasExited) live--;
                    }
                }

                return live;
            }
        }
    }

    /// <summary>
    /// The wait before the next start after <paramref name="failuresInARow"/> failures: none for zero, then
    /// <paramref name="initial"/> doubling per failure, capped at <paramref name="max"/>.
    /// </summary>
    internal static TimeSpan RestartDelay(int failuresInARow, TimeSpan initial, TimeSpan max)
    {
        if (failuresInARow <= 0)
        {
            return TimeSpan.Zero;
        }

        var factor = Math.Pow(2, Math.Min(failuresInARow - 1, 30));
        return TimeSpan.FromMilliseconds(Math.Min(initial.TotalMilliseconds * factor, max.TotalMilliseconds));
    }

    /// <summary>
    /// Runs one task on a process of <paramref name="binary"/>. The caller holds a gate slot throughout, and past the
    /// return until <see cref="PersistentRun.SlotFreed"/> completes: a process recycled after this task is still
    /// exiting then (up to <see cref="ExitGrace"/>), and the task's result need not wait for it, but no process may
    /// start in its slot before it is gone.
    /// </summary>
    public async Task<PersistentRun> RunAsync(ExecutorTask task, string binary, CancellationToken cancellationToken)
    {
        var child = Take(binary, out var evicted);
        if (evicted is not null)
        {
            // Every slot's process belongs to other binaries: the idle one makes room for this binary's.
            await evicted.EndAsync(ExitGrace, _hurry.Token).ConfigureAwait(false);
        }

        if (child is { HasExited: true })
        {
            // It died while idle: the task has not been sent, so it is not the task's failure. The replacement
            // takes over its place in the live count.
            await child.KillAsync().ConfigureAwait(false);
            ExecutorLog.ProcessExitedIdle(_logger, child.Binary, child.Pid, child.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "unknown");
            _events?.Increment("exited");
            Failed();
            child = null;
        }

        if (child is null)
        {
            try
            {
                child = await StartAsync(binary, cancellationToken).ConfigureAwait(false);
            }
            catch (ProcessSpawnException e)
            {
                _events?.Increment("start_failed");
                Forget();
                Failed();
                return new PersistentRun(new ProcessRun(ProcessRunStatus.SpawnFailed, e.Pid, null, "", e.Stderr, TimeSpan.Zero, e.Message));
            }
            catch (OperationCanceledException)
            {
                Forget();
                throw;
            }
        }

        ProcessRun run;
        try
        {
            run = await child.RunAsync(task, _taskTimeout, _maxOutputBytes, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Forget();
            throw;
        }

        if (!child.IsAlive)
        {
            Forget();
            if (run.Status != ProcessRunStatus.Exited || run.Error is not null)
            {
                _events?.Increment("failed");
                Failed();
            }
            else
            {
                _events?.Increment("exited");
            }

            return new PersistentRun(run);
        }

        lock (_lock)
        {
            _failuresInARow = 0;
        }

        if (RecycleReason(child) is { } reason)
        {
            ExecutorLog.ProcessRecycled(_logger, child.Binary, child.Pid, child.TasksAnswered, reason);
            _events?.Increment("recycled");
            // The task's result goes back now; the slot stays taken until the process has exited (it is counted
            // live until then), so max_executors still bounds the processes alive.
            var ending = EndAndForgetAsync(child);
            lock (_lock)
            {
                _ending.RemoveAll(static end => end.IsCompleted);
                _ending.Add(ending);
            }

            return new PersistentRun(run, ending);
        }
        else
        {
            bool kept;
            lock (_lock)
            {
                // Not once the worker's stop ran out of time (EndNowAsync): then it is ended now.
                kept = !_hurry.IsCancellationRequested;
                if (kept)
                {
                    if (!_idle.TryGetValue(binary, out var idle))
                    {
                        _idle[binary] = idle = new Stack<PersistentChild>();
                    }

                    idle.Push(child);
                }
            }

            if (!kept) await EndAndForgetAsync(child).ConfigureAwait(false);
        }

        return new PersistentRun(run);
    }

    /// <summary>Ends every idle process (stdin closed, then killed after the grace). Call once no task runs.</summary>
    public async ValueTask DisposeAsync() => await EndIdleAsync().ConfigureAwait(false);

    /// <summary>
    /// Ends every process that is idle or being ended at once, without the rest of its grace, and any that finishes
    /// its task from now on: for a stop whose bound ran out, so that no process outlives the worker.
    /// </summary>
    public Task EndNowAsync()
    {
        _hurry.Cancel();
        return EndIdleAsync();
    }

    private Task EndIdleAsync()
    {
        List<PersistentChild> idle;
        lock (_lock)
        {
            idle = [.. _idle.Values.SelectMany(stack => stack)];
            _idle.Clear();
        }

        var ends = idle.Select(EndAndForgetAsync).ToList();
        lock (_lock)
        {
            _ending.AddRange(ends);
            return Task.WhenAll(_ending);
        }
    }

    private async Task EndAndForgetAsync(PersistentChild child)
    {
        try
        {
            await child.EndAsync(ExitGrace, _hurry.Token).ConfigureAwait(false);
        }
        finally
        {
            Forget();
        }
    }

    /// <summary>
    /// An idle process of <paramref name="binary"/>, or null after reserving room for a new one; when every slot's
    /// process is another binary's, one of those idle processes is handed back to be ended.
    /// </summary>
    private PersistentChild? Take(string binary, out PersistentChild? evicted)
    {
        evicted = null;
        lock (_lock)
        {
            if (_idle.TryGetValue(binary, out var own) && own.Count > 0)
            {
                return own.Pop();
            }

            if (_live >= _capacity)
            {
                // The gate admits at most _capacity runs, this one included, so some live process is idle.
                foreach (var stack in _idle.Values)
                {
                    if (stack.Count > 0)
                    {
                        evicted = stack.Pop();
                        _live--;
                        break;
                    }
                }
            }

            _live++;
            return null;
        }
    }

    private async Task<PersistentChild> StartAsync(string binary, CancellationToken cancellationToken)
    {
        int failures;
        lock (_lock)
        {
            failures = _failuresInARow;
        }

        var delay = RestartDelay(failures, _backoff, _backoffMax);
        if (delay > TimeSpan.Zero)
        {
            ExecutorLog.ProcessRestartDelayed(_logger, binary, failures, delay.TotalMilliseconds);
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }

        var child = await PersistentChild.StartAsync(binary, _processArgs, _environment, _readyTimeout, _logger, cancellationToken)
            .ConfigureAwait(false);
        // Ready: the binary works. Its next crash waits restart_backoff_ms again instead of doubling on from the crashes
        // before, so a run of poison inputs that each kill a process does not stall every other task for up to
        // restart_backoff_max_ms; only starts that keep failing (no ready line) back off further and further.
        lock (_lock)
        {
            _failuresInARow = 0;
        }

        ExecutorLog.ProcessStarted(_logger, binary, child.Pid);
        _events?.Increment("started");
        return child;
    }

    private string? RecycleReason(PersistentChild child)
    {
        if (_maxTasksPerProcess > 0 && child.TasksAnswered >= _maxTasksPerProcess)
        {
            return $"it answered {child.TasksAnswered} tasks (executor.max_tasks_per_process)";
        }

        if (_maxRssMb > 0 && child.ResidentMegabytes() is { } rss && rss > _maxRssMb)
        {
            return $"its resident memory is {rss} MiB, over executor.max_rss_mb ({_maxRssMb})";
        }

        return null;
    }

    private void Forget()
    {
        lock (_lock)
        {
            _live--;
        }
    }

    private void Failed()
    {
        lock (_lock)
        {
            _failuresInARow++;
        }
    }
}

/// <summary>A task's run on a persistent process, and when the slot it ran in is free again (already, unless the
/// process is being recycled).</summary>
internal readonly record struct PersistentRun(ProcessRun Run, Task? SlotFreed = null);
