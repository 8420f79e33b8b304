using System.Diagnostics;
using System.Threading.Channels;
using Drakkar.Observability.Metrics;
using Drakkar.Observability.Tracing;
using Microsoft.Extensions.Logging;

namespace Drakkar.Pipeline;

/// <summary>Settings one partition pipeline needs, taken from <see cref="ExecutorConfig"/>.</summary>
/// <param name="WindowSize">The most messages one <c>Arrange</c> call gets.</param>
/// <param name="MaxRetries">How many times <see cref="ErrorDecision.Retry"/> re-runs a task.</param>
/// <param name="RetryBackoff">The wait before each such re-run; null retries at once.</param>
internal sealed record PipelineSettings(int WindowSize, int MaxRetries, RetryBackoff? RetryBackoff = null)
{
    public static PipelineSettings From(ExecutorConfig executor) =>
        new(executor.WindowSize, executor.MaxRetries, RetryBackoff.FromMilliseconds(executor.RetryBackoffMs, executor.RetryBackoffMaxMs));
}

/// <summary>
/// The pipeline of one assigned partition (SPEC O1–O5): queued messages are taken in windows of up to
/// <c>window_size</c>, arranged into tasks, run on the shared executor, passed through the hooks and delivered.
/// A message is done once every task that lists it is final and every payload from its task, message and window
/// hooks is settled; only then does the offset tracker let the watermark pass it.
/// </summary>
internal sealed partial class PartitionPipeline
{
    private readonly DrakkarHandlerBase _handler;
    private readonly ITaskExecutor _executor;
    private readonly IPayloadDelivery _delivery;
    private readonly PipelineSettings _settings;
    private readonly WorkerLoad _load;
    private readonly DrakkarMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Channel<SourceMessage> _queue = Channel.CreateUnbounded<SourceMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _abort = new();
    private readonly Lock _gate = new();
    private readonly OffsetTracker _offsets = new();
    private readonly Dictionary<long, MessageState> _open = [];
    private readonly HashSet<ExecutorTask> _pendingTasks = [];
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly MetricCell _queueSize;
    private readonly MetricCell _consumed;
    private Task? _loop;
    private long _committed = -1;
    private long _firstOffset = -1;
    private long _committedAtAssign = -1;
    private long _ownLoad;
    private int _loadReleased;
    private bool _loopFinished;
    private bool _draining;
    private bool _checkpointsAbandoned;

    public PartitionPipeline(string topic, int partition, DrakkarHandlerBase handler, ITaskExecutor executor,
        IPayloadDelivery delivery, PipelineSettings settings, WorkerLoad load, DrakkarMetrics metrics, ILogger logger)
    {
        Topic = topic;
        Partition = partition;
        _handler = handler;
        _executor = executor;
        _delivery = delivery;
        _settings = settings;
        _load = load;
        _metrics = metrics;
        _logger = logger;
        var label = partition.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _queueSize = metrics.PartitionQueueSize.WithLabels(label);
        _consumed = metrics.MessagesConsumed.WithLabels(label);
    }

    public string Topic { get; }
    public int Partition { get; }

    /// <summary>Messages not yet done (queued, arranged or delivering).</summary>
    public int OpenMessages
    {
        get { lock (_gate) return _offsets.Outstanding; }
    }

    public void Start() => _loop = Task.Run(RunWindowsAsync);

    /// <summary>
    /// Queues a consumed message. Called from the poll thread, in offset order. Returns false, taking nothing, once
    /// the pipeline drains or was abandoned: the record stays uncommitted and whoever consumes the partition next
    /// reads it again.
    /// </summary>
    public bool Enqueue(SourceMessage message)
    {
        message.Span = PipelineTracing.StartMessage(message);
        lock (_gate)
        {
            if (_draining || _abort.IsCancellationRequested) return false;
            _offsets.Register(message.Offset);
            if (_firstOffset < 0) _firstOffset = message.Offset;
        }
        AddLoad(1);
        _queueSize.Add(1);
        if (!_queue.Writer.TryWrite(message))
        {
            // A drain began between the check and the write: the record is let go like any queued one (its offset
            // stays outstanding, so nothing at or past it is committed).
            AddLoad(-1);
            _queueSize.Add(-1);
            return false;
        }
        _consumed.Increment();
        return true;
    }

    /// <summary>
    /// Registers a record that could not be turned into a message (dispatch failed) and sends it to the DLQ as it was
    /// consumed: its offset is committed only once the dead letter is stored, never skipped. Refused (false) like
    /// <see cref="Enqueue"/> once the pipeline drains, and for an offset already registered.
    /// </summary>
    public bool EnqueueFailed(SourceMessage message, string error)
    {
        message.Span = PipelineTracing.StartMessage(message);
        var state = new MessageState(this, message, DateTimeOffset.UtcNow);
        lock (_gate)
        {
            if (_draining || _abort.IsCancellationRequested || message.Offset <= _offsets.LastRegistered) return false;
            _offsets.Register(message.Offset);
            if (_firstOffset < 0) _firstOffset = message.Offset;
            _open[message.Offset] = state;
        }
        _consumed.Increment();
        _ = DeadLetterWindowAsync([message], [state], error);
        return true;
    }

    /// <summary>
    /// The offset to commit if it moved since the last call that was confirmed with <see cref="ConfirmCommitted"/>,
    /// else null.
    /// </summary>
    public long? CommitCandidate()
    {
        lock (_gate)
        {
            var candidate = _offsets.Committable;
            return candidate > _committed && !_checkpointsAbandoned ? candidate : null;
        }
    }

    /// <summary>
    /// A flush of this partition failed: what the sinks held is lost and the partition is to be rewound (SPEC O9), so
    /// nothing more of this pipeline's work may be committed, not even by a later flush that succeeds on an emptied
    /// buffer before the rewind takes effect.
    /// </summary>
    public void AbandonCheckpoints()
    {
        lock (_gate) _checkpointsAbandoned = true;
    }

    public void ConfirmCommitted(long offset)
    {
        lock (_gate)
        {
            if (offset > _committed) _committed = offset;
        }
    }

    /// <summary>Where consumption restarts when this pipeline's uncommitted work is abandoned: the last committed offset, else the first one it saw.</summary>
    public long RestartOffset
    {
        get { lock (_gate) return _committed >= 0 ? _committed : _firstOffset; }
    }

    /// <summary>
    /// Messages finished here that no confirmed commit covers: whoever consumes the partition next processes them
    /// again. Read at a handover (revoke, lost, stop) after the final commit.
    /// </summary>
    public long FinishedUncommitted
    {
        get
        {
            lock (_gate)
            {
                var from = _committed >= 0 ? _committed : _firstOffset;
                var prefix = from >= 0 && _offsets.Committable > from ? _offsets.Committable - from : 0;
                return prefix + _offsets.DoneAhead;
            }
        }
    }

    /// <summary>
    /// The group's committed offset when the partition was assigned here (-1 when not known), for
    /// <see cref="Progress"/> until this worker commits one of its own.
    /// </summary>
    public long CommittedAtAssign
    {
        get => Volatile.Read(ref _committedAtAssign);
        set => Volatile.Write(ref _committedAtAssign, value);
    }

    /// <summary>
    /// The committed offset (this worker's last commit, else the group's at assignment, else -1), the last consumed
    /// one (-1 before any), and the messages not yet done.
    /// </summary>
    public (long Committed, long LastConsumed, int Open) Progress
    {
        get { lock (_gate) return (_committed >= 0 ? _committed : CommittedAtAssign, _offsets.LastRegistered, _offsets.Outstanding); }
    }

    /// <summary>
    /// The consumed-minus-committed distance for the lag metric. Before this worker's first commit it is measured from
    /// where consumption started here (the group's committed offset, or the reset position), not from offset 0: a
    /// partition taken over at offset 5,000 has a lag of the messages read since, not of 5,000 more.
    /// </summary>
    public long Lag
    {
        get
        {
            lock (_gate) return _offsets.LastRegistered < 0 ? 0 : _offsets.LastRegistered + 1 - (_committed >= 0 ? _committed : _firstOffset);
        }
    }

    /// <summary>
    /// Stops taking messages and finishes the work already started: windows being arranged, tasks running, hooks
    /// and deliveries in flight (SPEC O7). Messages still queued are let go: they stay uncommitted and whoever
    /// consumes the partition next starts from them. Returns false when <paramref name="timeout"/> passed first; the
    /// remaining work is then cancelled and stays uncommitted.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan timeout)
    {
        lock (_gate) _draining = true;
        _queue.Writer.TryComplete();
        // A spent bound (negative) drains nothing more rather than throw or wait for good (Task.Delay's -1 ms).
        var finished = await Task.WhenAny(_drained.Task, Task.Delay(timeout > TimeSpan.Zero ? timeout : TimeSpan.Zero)).ConfigureAwait(false) == _drained.Task;
        if (!finished)
        {
            LogDrainTimedOut(Topic, Partition, timeout.TotalSeconds, OpenMessages);
            await _abort.CancelAsync().ConfigureAwait(false);
        }
        ReleaseLoad();
        return finished;
    }

    /// <summary>Abandons all work at once (partition lost): nothing further is committed.</summary>
    public void Abort()
    {
        _queue.Writer.TryComplete();
        _abort.Cancel();
        ReleaseLoad();
    }

    /// <summary>Counts work in the global load, until this pipeline is gone.</summary>
    private void AddLoad(long amount)
    {
        if (Volatile.Read(ref _loadReleased) == 1) return;
        Interlocked.Add(ref _ownLoad, amount);
        _load.Add(amount);
    }

    /// <summary>A finished or abandoned pipeline takes whatever it still counted out of the global load.</summary>
    private void ReleaseLoad()
    {
        if (Interlocked.Exchange(ref _loadReleased, 1) == 1) return;
        _load.Add(-Interlocked.Exchange(ref _ownLoad, 0));
    }

    private async Task RunWindowsAsync()
    {
        var reader = _queue.Reader;
        var window = new List<SourceMessage>(_settings.WindowSize);
        try
        {
            while (!Volatile.Read(ref _draining) && await reader.WaitToReadAsync(_abort.Token).ConfigureAwait(false))
            {
                window.Clear();
                while (window.Count < _settings.WindowSize && reader.TryRead(out var message)) window.Add(message);
                _queueSize.Add(-window.Count);
                await ProcessWindowAsync([.. window]).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            // Abandoned: what is not done stays uncommitted and is redone by whoever consumes next.
        }
        catch (Exception e)
        {
            LogPipelineFailed(e, Topic, Partition);
        }
        finally
        {
            // Messages left queued by a drain or an abort are not this pipeline's any more.
            while (reader.TryRead(out _)) _queueSize.Add(-1);
            lock (_gate) _loopFinished = true;
            CheckDrained();
        }
    }

    private async Task ProcessWindowAsync(SourceMessage[] messages)
    {
        var states = new MessageState[messages.Length];
        lock (_gate)
        {
            for (var i = 0; i < messages.Length; i++)
            {
                states[i] = new MessageState(this, messages[i], DateTimeOffset.UtcNow);
                _open[messages[i].Offset] = states[i];
            }
        }

        var started = Stopwatch.GetTimestamp();
        var (arranged, arrangeError) = await CallHookAsync("arrange",
            static (handler, arg) => handler.ArrangeCore(arg.Messages, new PendingContext(arg.Pending)), (Messages: messages, Pending: new PendingTasks(this)),
            new OffsetRange(messages)).ConfigureAwait(false);
        if (arrangeError is not null)
        {
            AddLoad(-messages.Length);
            // Not awaited: the next window goes on while the DLQ write is retried; these messages stay open until it lands.
            _ = DeadLetterWindowAsync(messages, states, $"arrange failed: {arrangeError.GetType().Name}: {arrangeError.Message}");
            return;
        }
        var tasks = arranged ?? [];

        // The messages leave the load only now (while being arranged they are still held in memory), and in the same
        // step as their tasks join it: a dip between the two let the poll thread take records past the high mark.
        AddLoad(tasks.Count - messages.Length);
        var window = new WindowState(messages, states, tasks.Count, started);
        var untouched = new List<MessageState>();
        lock (_gate)
        {
            foreach (var task in tasks) Join(task, window);
            foreach (var state in states)
            {
                // Messages no task serves complete right after Arrange; the window hook does not hold them back
                // when the window produced no tasks.
                state.Holds = tasks.Count > 0 ? 2 : 1;
                if (state.RemainingTasks == 0)
                {
                    state.TasksFinished = true;
                    untouched.Add(state);
                }
            }
        }

        foreach (var state in untouched) _ = CompleteMessageAsync(state);
        foreach (var task in tasks) _ = RunTaskAsync(task, window);
    }

    private async Task DeadLetterWindowAsync(SourceMessage[] messages, MessageState[] states, string error)
    {
        try
        {
            await _delivery.DeadLetterAsync(new DeliveryOrigin(Topic, Partition, messages), error, _abort.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Abandoned, or closing: the messages stay uncommitted and are redone.
            return;
        }
        foreach (var state in states)
        {
            PipelineTracing.Fail(state.Message.Span, error);
            Done(state);
        }
    }

    /// <summary>Registers <paramref name="task"/> with the window and every open message it lists. Caller holds the gate and counts the task in the load.</summary>
    private void Join(ExecutorTask task, WindowState window)
    {
        var offsets = task.SourceOffsets;
        var joined = new List<MessageState>(offsets.Count);
        for (var i = 0; i < offsets.Count; i++)
        {
            var offset = offsets[i];
            if (_open.TryGetValue(offset, out var state) && !state.TasksFinished)
            {
                if (joined.Contains(state)) continue;
                state.RemainingTasks++;
                state.Tasks.Add(task);
                joined.Add(state);
            }
            else
            {
                LogUnknownOffset(Topic, Partition, task.TaskId, offset);
            }
        }
        window.Joined[task] = joined;
        _pendingTasks.Add(task);
    }

    /// <summary>Executor metrics per attempt: <c>drakkar_executor_tasks_total{status}</c>, durations, timeouts, precomputed.</summary>
    private void CountOutcome(ExecutorTask task, in Execution.ExecutorOutcome outcome)
    {
        if (outcome.Result is { } result)
        {
            _metrics.ExecutorTasks.Increment("completed");
            if (task.Precomputed is not null) _metrics.TasksPrecomputed.Increment();
            else _metrics.ExecutorDuration.Observe(result.Duration.TotalSeconds);
            return;
        }
        var error = outcome.Error!;
        var timedOut = error.Failure == ExecutorFailure.Timeout;
        _metrics.ExecutorTasks.Increment(timedOut ? "timeout" : "failed");
        if (timedOut) _metrics.Timeouts.Increment();
        if (error.Duration > TimeSpan.Zero) _metrics.ExecutorDuration.Observe(error.Duration.TotalSeconds);
    }

    private async Task RunTaskAsync(ExecutorTask task, WindowState window)
    {
        var attempt = 1;
        using var span = PipelineTracing.IsOn ? PipelineTracing.StartTask(task, MessageSpans(task, window)) : null;
        try
        {
            while (true)
            {
                var outcome = await _executor.ExecuteAsync(task, SafePriority(task), attempt, _abort.Token).ConfigureAwait(false);
                CountOutcome(task, outcome);
                _metrics.Events.TaskFinished(task, Partition, attempt, outcome);
                span?.SetTag("drakkar.task.attempts", attempt);
                if (outcome.Result is { } result)
                {
                    span?.SetTag("process.exit.code", result.ExitCode);
                    var failure = await OnSuccessAsync(task, result, window, span).ConfigureAwait(false);
                    if (failure is null)
                    {
                        Finish(task, window, result, null);
                        return;
                    }
                    PipelineTracing.Fail(span, "on_task_complete failed");
                    Finish(task, window, null, failure);
                    return;
                }

                var error = outcome.Error! with { Attempt = attempt };
                // The process's exit code when it exited (null when it could not start, timed out or was killed).
                if (error.ExitCode is { } exitCode) span?.SetTag("process.exit.code", exitCode);
                var decision = await DecideAsync(task, error).ConfigureAwait(false);
                switch (decision.Kind)
                {
                    case ErrorDecisionKind.Retry when attempt <= _settings.MaxRetries:
                        _metrics.TaskRetries.Increment();
                        // Cancelled when the partition is abandoned (lost, or a drain that timed out): the task then
                        // stays unfinished and uncommitted like any other abandoned work.
                        if (_settings.RetryBackoff?.Before(attempt, Random.Shared) is { Ticks: > 0 } wait)
                            await Task.Delay(wait, _abort.Token).ConfigureAwait(false);
                        attempt++;
                        continue;
                    case ErrorDecisionKind.Replace when task.Generation < MaxReplacementGenerations || decision.Replacements.Count == 0:
                        // Replacements of a failed task are a retry in another form: they wait the retry backoff,
                        // growing with each generation, so an OnError that always replaces is not a hot loop.
                        if (decision.Replacements.Count > 0 && _settings.RetryBackoff?.Before(task.Generation + 1, Random.Shared) is { Ticks: > 0 } pause)
                            await Task.Delay(pause, _abort.Token).ConfigureAwait(false);
                        Replace(task, decision.Replacements, window);
                        return;
                    case ErrorDecisionKind.Replace:
                        // A chain this long is an OnError that replaces whatever fails: without an end the message
                        // would never complete and its partition never commit past it.
                        LogReplacementChainEnded(_logger, task.TaskId, Topic, Partition, MaxReplacementGenerations);
                        goto default;
                    default:
                        PipelineTracing.Fail(span, error.Failure.ToString());
                        // Attempts log at information level (one may be retried); the final failure is a warning, with
                        // the end of stderr, so that a worker logging at WARNING still shows its failing tasks.
                        LogTaskFailedForGood(_logger, task.TaskId, Topic, Partition, attempt, error.Failure,
                            error.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none", StderrTail(error.Stderr));
                        Finish(task, window, null, error);
                        return;
                }
            }
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            // Abandoned with the partition; the message stays open and uncommitted.
        }
        catch (Exception e)
        {
            LogTaskPipelineFailed(e, Topic, Partition, task.TaskId);
            PipelineTracing.Fail(span, e.GetType().Name);
            Finish(task, window, null, new ExecutorError(task, ExecutorFailure.HookFailed, null, "", e.ToString(), null) { Attempt = attempt });
        }
    }

    /// <summary>
    /// Runs <c>OnTaskComplete</c> and hands its payloads over; the task's messages stay open until they are settled.
    /// Returns an error when the hook threw.
    /// </summary>
    private async Task<ExecutorError?> OnSuccessAsync(ExecutorTask task, ExecutorResult result, WindowState window, Activity? span)
    {
        var (collect, error) = await CallHookAsync("on_task_complete", static (handler, result) => handler.OnTaskComplete(result), result, task.TaskId)
            .ConfigureAwait(false);
        if (error is not null) return new ExecutorError(task, ExecutorFailure.HookFailed, result.ExitCode, result.Stderr, error.ToString(), result.Pid);
        if (collect is { Count: > 0 })
        {
            List<MessageState> joined;
            string hook;
            lock (_gate)
            {
                joined = window.Joined[task];
                // The task's place among its first message's tasks follows Arrange's order, so it is the same on a redo.
                hook = joined.Count > 0 ? TaskHookLabel(joined[0].Tasks.IndexOf(task)) : $"on_task_complete {task.TaskId}";
            }
            Deliver(collect, joined, span, hook);
        }
        return null;
    }

    private async Task<ErrorDecision> DecideAsync(ExecutorTask task, ExecutorError error)
    {
        // A throwing OnError must never wedge the partition: the failure becomes final.
        var (decision, _) = await CallHookAsync("on_error", static (handler, arg) => handler.OnError(arg.Task, arg.Error), (Task: task, Error: error), task.TaskId)
            .ConfigureAwait(false);
        return decision ?? ErrorDecision.Skip;
    }

    /// <summary>
    /// Replacement tasks join every message they list before the failed task leaves its messages, so no message
    /// can complete between the two.
    /// </summary>
    private void Replace(ExecutorTask failed, IReadOnlyList<ExecutorTask> replacements, WindowState window)
    {
        lock (_gate)
        {
            window.RemainingTasks += replacements.Count;
            AddLoad(replacements.Count);
            foreach (var replacement in replacements)
            {
                replacement.InheritParent(failed);
                Join(replacement, window);
            }
            foreach (var state in window.Joined[failed]) (state.ReplacedTaskIds ??= []).Add(failed.TaskId);
        }
        foreach (var replacement in replacements) _ = RunTaskAsync(replacement, window);
        Finish(failed, window, null, null);
    }

    /// <summary>Marks a task final (with its result, its error, or neither when replaced) and completes what that finishes.</summary>
    private void Finish(ExecutorTask task, WindowState window, ExecutorResult? result, ExecutorError? error)
    {
        // A task usually completes one message: a list only when it completes more.
        MessageState? completed = null;
        List<MessageState>? alsoCompleted = null;
        var windowDone = false;
        lock (_gate)
        {
            if (!_pendingTasks.Remove(task)) return;
            AddLoad(-1);
            if (result is not null) window.Results.Add(result);
            foreach (var state in window.Joined[task])
            {
                if (result is not null) state.Results.Add(result);
                if (error is not null) (state.Errors ??= []).Add(error);
                if (--state.RemainingTasks == 0)
                {
                    state.TasksFinished = true;
                    if (completed is null) completed = state;
                    else (alsoCompleted ??= []).Add(state);
                }
            }
            windowDone = --window.RemainingTasks == 0;
        }
        if (completed is not null) _ = CompleteMessageAsync(completed);
        if (alsoCompleted is not null)
            foreach (var state in alsoCompleted) _ = CompleteMessageAsync(state);
        if (windowDone) _ = CompleteWindowAsync(window);
    }

    private async Task CompleteMessageAsync(MessageState state)
    {
        MessageGroup group;
        lock (_gate)
        {
            // The lists themselves, not copies: a message's tasks are final here, so nothing changes them any more.
            group = _handler.CreateGroup(state.Message, state.Tasks, state.Results, (IReadOnlyList<ExecutorError>?)state.Errors ?? [],
                (IReadOnlyList<string>?)state.ReplacedTaskIds ?? [], state.StartedAt, DateTimeOffset.UtcNow);
        }
        // The message's span is current for its hook (this async flow only), so spans the handler starts nest under it.
        if (state.Message.Span is { } span) Activity.Current = span;
        // A throwing hook is logged and the message still completes (its offsets advance).
        var (collect, _) = await CallHookAsync("on_message_complete", static (handler, group) => handler.OnMessageComplete(group), group, state.Message)
            .ConfigureAwait(false);
        if (collect is { Count: > 0 }) Deliver(collect, [state], state.Message.Span, "on_message_complete");
        Release(state);
    }

    private async Task CompleteWindowAsync(WindowState window)
    {
        // The list itself, not a copy: every task of the window is final here, so nothing adds to it any more.
        var results = window.Results;
        _metrics.BatchDuration.Observe(Stopwatch.GetElapsedTime(window.StartedAt).TotalSeconds);
        var (collect, _) = await CallHookAsync("on_window_complete",
            static (handler, arg) => handler.OnWindowComplete(arg.Results, arg.Messages), (Results: results, window.Messages),
            new OffsetRange(window.Messages)).ConfigureAwait(false);
        // A window's payloads come from all its messages; their delivery spans are children of the first one's.
        if (collect is { Count: > 0 }) Deliver(collect, window.States, window.Messages[0].Span, "on_window_complete");
        foreach (var state in window.States) Release(state);
    }

    /// <summary>
    /// Hands a hook's payloads to the delivery engine without waiting: each of <paramref name="states"/> gets one more
    /// hold, released when every payload is settled. Until then the messages stay open and their offsets uncommitted.
    /// </summary>
    /// <param name="collect">The hook's payloads.</param>
    /// <param name="states">The messages they came from.</param>
    /// <param name="cause">
    /// The span of the hook's subject (task or message): the parent of their delivery spans. When it was not made (its
    /// trace is sampled out), the first message's span stands in, so the trace context still reaches the sinks.
    /// </param>
    /// <param name="hook">Which hook call returned them (<see cref="DeliveryOrigin.Hook"/>).</param>
    private void Deliver(CollectResult collect, IReadOnlyList<MessageState> states, Activity? cause, string hook)
    {
        // Indexed loops: a foreach over the interface would box the list's enumerator, twice per hook call.
        lock (_gate)
        {
            for (var i = 0; i < states.Count; i++) states[i].Holds++;
        }
        var messages = new SourceMessage[states.Count];
        for (var i = 0; i < messages.Length; i++) messages[i] = states[i].Message;
        var origin = new DeliveryOrigin(Topic, Partition, messages)
        {
            Parent = (cause ?? (states.Count > 0 ? states[0].Message.Span : null))?.Context ?? default,
            Hook = hook,
        };
        _delivery.Submit(collect, origin, _abort.Token, ReleaseWhenSettled, states);
    }

    /// <summary>
    /// The settle callback of <see cref="Deliver"/>, static so a hook call allocates no closure: its state is the
    /// messages' list, and each message knows its pipeline. Not settled (abandoned, or the sinks closed first): the
    /// messages stay open and uncommitted, to be redone.
    /// </summary>
    private static readonly Action<bool, object?> ReleaseWhenSettled = static (settled, state) =>
    {
        if (!settled) return;
        var states = (IReadOnlyList<MessageState>)state!;
        for (var i = 0; i < states.Count; i++) states[i].Pipeline.Release(states[i]);
    };

    /// <summary>
    /// Calls one user hook: times it (<c>drakkar_handler_duration_seconds</c>), and turns an exception into a logged
    /// error the caller decides about (cancellation of an abandoned partition still propagates).
    /// </summary>
    /// <param name="hook">The hook's name in logs and metrics.</param>
    /// <param name="call">
    /// Calls the hook (inside the guard, so a hook that throws before returning is caught too); a static lambda given
    /// <paramref name="arg"/>, so calling a hook allocates no closure.
    /// </param>
    /// <param name="arg">What <paramref name="call"/> passes to the hook.</param>
    /// <param name="subject">What the hook works on, for the log (formatted only when the hook fails).</param>
    private async ValueTask<(T? Value, Exception? Error)> CallHookAsync<TArg, T>(string hook, Func<DrakkarHandlerBase, TArg, ValueTask<T>> call, TArg arg,
        object subject)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return (await call(_handler, arg).ConfigureAwait(false), null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !_abort.IsCancellationRequested)
        {
            LogHookFailed(e, hook, Topic, Partition, subject.ToString() ?? "");
            return (default, e);
        }
        finally
        {
            _metrics.HandlerDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds, hook);
        }
    }

    private static readonly string[] TaskHookLabels = [.. Enumerable.Range(0, 16).Select(i => $"on_task_complete #{i}")];

    /// <summary>The origin label of a task's payloads: its place among its first message's tasks (cached for the usual few).</summary>
    private static string TaskHookLabel(int index) => (uint)index < (uint)TaskHookLabels.Length ? TaskHookLabels[index] : $"on_task_complete #{index}";

    /// <summary>One hold on the message is settled (its own hook's payloads, or its window's).</summary>
    private void Release(MessageState state)
    {
        bool done;
        lock (_gate) done = --state.Holds == 0;
        if (done) Done(state);
    }

    private void Done(MessageState state)
    {
        lock (_gate)
        {
            _open.Remove(state.Message.Offset);
            _offsets.MarkDone(state.Message.Offset);
        }
        PipelineTracing.Stop(state.Message.Span);
        CheckDrained();
    }

    private void CheckDrained()
    {
        bool drained;
        // Messages still queued when a drain began are not waited for: only what was taken into a window.
        lock (_gate) drained = _loopFinished && _open.Count == 0 && _pendingTasks.Count == 0;
        if (drained) _drained.TrySetResult();
    }

    private long SafePriority(ExecutorTask task)
    {
        try
        {
            return _handler.TaskPriority(task);
        }
        catch (Exception e)
        {
            _metrics.PriorityErrors.Increment();
            LogHookFailed(e, "task_priority", Topic, Partition, task.TaskId);
            return long.MaxValue;
        }
    }

    /// <summary>The spans of the messages <paramref name="task"/> serves, first one first.</summary>
    private List<Activity?> MessageSpans(ExecutorTask task, WindowState window)
    {
        lock (_gate) return window.Joined.TryGetValue(task, out var joined) ? [.. joined.Select(s => s.Message.Span)] : [];
    }

    /// <summary>
    /// The partition's tasks that are not final yet, as <c>Arrange</c> sees them: copied the first time it reads them
    /// (most handlers never do; copying every pending task for every window did cost more than the window).
    /// </summary>
    private sealed class PendingTasks(PartitionPipeline pipeline) : IReadOnlyList<ExecutorTask>
    {
        private ExecutorTask[]? _copy;

        public int Count => Copy().Length;

        public ExecutorTask this[int index] => Copy()[index];

        public IEnumerator<ExecutorTask> GetEnumerator() => ((IEnumerable<ExecutorTask>)Copy()).GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        private ExecutorTask[] Copy()
        {
            if (Volatile.Read(ref _copy) is { } copy) return copy;
            lock (pipeline._gate) return _copy ??= [.. pipeline._pendingTasks];
        }
    }

    /// <summary>A window's offsets as logs show them.</summary>
    private readonly record struct OffsetRange(IReadOnlyList<SourceMessage> Messages)
    {
        public override string ToString() => $"offsets {Messages[0].Offset}-{Messages[^1].Offset}";
    }

    private sealed class MessageState(PartitionPipeline pipeline, SourceMessage message, DateTimeOffset startedAt)
    {
        public PartitionPipeline Pipeline { get; } = pipeline;
        public SourceMessage Message { get; } = message;
        public DateTimeOffset StartedAt { get; } = startedAt;
        // Sized for the usual one task per message.
        public List<ExecutorTask> Tasks { get; } = new(1);
        public List<ExecutorResult> Results { get; } = new(1);
        // Created on first use: most messages end with neither.
        public List<ExecutorError>? Errors { get; set; }
        public List<string>? ReplacedTaskIds { get; set; }
        public int RemainingTasks { get; set; }
        public bool TasksFinished { get; set; }
        /// <summary>Settlements still owed: the message hook's delivery, plus the window hook's when the window has tasks.</summary>
        public int Holds { get; set; }
    }

    private sealed class WindowState(SourceMessage[] messages, MessageState[] states, int taskCount, long startedAt)
    {
        public SourceMessage[] Messages { get; } = messages;
        public MessageState[] States { get; } = states;
        public int RemainingTasks { get; set; } = taskCount;
        public long StartedAt { get; } = startedAt;
        public List<ExecutorResult> Results { get; } = new(taskCount);
        public Dictionary<ExecutorTask, List<MessageState>> Joined { get; } = new(taskCount, ReferenceEqualityComparer.Instance);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Hook {Hook} failed for {Topic}[{Partition}] ({Subject})")]
    private partial void LogHookFailed(Exception error, string hook, string topic, int partition, string subject);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskId} lists offset {Offset}, which is not an open message of {Topic}[{Partition}]; ignored")]
    private partial void LogUnknownOffset(string topic, int partition, string taskId, long offset);

    /// <summary>The most replacements a task of <c>Arrange</c> goes through: enough to halve a batch task down 16 times.</summary>
    internal const int MaxReplacementGenerations = 16;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskId} of {Topic}[{Partition}] is the end of a chain of {Generations} replacements: OnError's replacements for it are not run, and its failure is final")]
    private static partial void LogReplacementChainEnded(ILogger logger, string taskId, string topic, int partition, int generations);

    /// <summary>The last <see cref="StderrTailChars"/> characters of a task's stderr, trimmed, for a log line.</summary>
    private static string StderrTail(string stderr)
    {
        var text = stderr.TrimEnd();
        return text.Length == 0 ? "(empty)" : text.Length <= StderrTailChars ? text : "…" + text[^StderrTailChars..];
    }

    private const int StderrTailChars = 500;

    [LoggerMessage(EventId = 3012, Level = LogLevel.Warning, Message = "Task {TaskId} of {Topic}[{Partition}] failed for good after {Attempts} attempt(s): {Failure}, exit code {ExitCode}; stderr: {Stderr}")]
    private static partial void LogTaskFailedForGood(ILogger logger, string taskId, string topic, int partition, int attempts, ExecutorFailure failure, string exitCode, string stderr);

    [LoggerMessage(Level = LogLevel.Error, Message = "Task {TaskId} of {Topic}[{Partition}] failed in the pipeline; it is final")]
    private partial void LogTaskPipelineFailed(Exception error, string topic, int partition, string taskId);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Pipeline of {Topic}[{Partition}] stopped unexpectedly")]
    private partial void LogPipelineFailed(Exception error, string topic, int partition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Drain of {Topic}[{Partition}] timed out after {Seconds:0.###}s with {Open} messages open; they stay uncommitted")]
    private partial void LogDrainTimedOut(string topic, int partition, double seconds, int open);
}
