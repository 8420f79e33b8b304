using System.Threading.Channels;
using Drakkar.Execution;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks.Dlq;
using Microsoft.Extensions.Logging;

namespace Drakkar.Diagnostics.Recorder;

/// <summary>
/// The flight recorder: turns worker events into <see cref="FlightEvent"/>s, keeps the newest ones in memory for the
/// debug UI, and hands them to a background writer through a bounded buffer (<c>debug.max_buffer</c>). The pipeline
/// never waits: when the buffer is full the event is dropped and counted
/// (<c>drakkar_recorder_events_dropped_total{reason="buffer_full"}</c>). The writer stores what it finds every
/// <c>debug.flush_interval_seconds</c> (sooner once half the buffer is used) in one transaction per batch.
/// </summary>
internal sealed partial class FlightRecorder : IWorkerEvents, IAsyncDisposable
{
    /// <summary>stdout and stderr are stored up to this many characters each (the start of the output).</summary>
    internal const int OutputExcerptChars = 4096;

    private readonly DebugConfig _config;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<FlightEvent> _buffer;
    private readonly MetricCell _droppedFull;
    private readonly MetricCell _droppedFailed;
    private readonly EventStore? _store;
    private readonly RecentRing<FlightEvent> _tasks;
    private readonly RecentRing<FlightEvent> _deadLetters;
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<string>? _state;
    private readonly (string WorkerId, string ClusterName, string DebugUrl, string EnvJson, string ConfigYaml) _identity;
    private readonly int _wakeAt;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _writer;
    private long _seq;
    private long _pending;
    private long _dropped;

    // config: the debug section. identity: what worker_config rows hold (debug.store_config). state: the worker's
    // state as JSON, stored every debug.state_sync_interval_seconds (debug.store_state).
    public FlightRecorder(DebugConfig config, (string WorkerId, string ClusterName, string DebugUrl, string EnvJson, string ConfigYaml) identity,
        Func<string>? state, DrakkarMetrics metrics, ILogger logger, TimeProvider? time = null)
    {
        _config = config;
        _identity = identity;
        _state = state;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _buffer = Channel.CreateBounded<FlightEvent>(new BoundedChannelOptions(config.MaxBuffer)
        {
            FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails instead of waiting: the event is dropped
            SingleReader = true,
        });
        _wakeAt = Math.Max(1, config.MaxBuffer / 2);
        _droppedFull = metrics.RecorderEventsDropped.WithLabels("buffer_full");
        _droppedFailed = metrics.RecorderEventsDropped.WithLabels("write_failed");
        _tasks = new RecentRing<FlightEvent>(config.MaxUiRows);
        _deadLetters = new RecentRing<FlightEvent>(config.MaxUiRows);
        if (config.DbDir.Length > 0 && (config.StoreEvents || config.StoreConfig || config.StoreState))
            _store = new EventStore(config.DbDir, identity.WorkerId);
    }

    public bool IsOn => true;

    /// <summary>The database file being written; null when nothing is stored (<c>db_dir</c> empty, every <c>store_*</c> off).</summary>
    public string? DatabasePath => _store?.Path;

    /// <summary>Events dropped so far (buffer full or failed writes).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Opens the first database file and starts the writer; a file that cannot be created is a startup error.</summary>
    public void Start()
    {
        if (_store is not null)
        {
            var now = _time.GetUtcNow();
            try
            {
                _store.Open(now);
                _store.DeleteFilesOlderThan(now - TimeSpan.FromHours(_config.RetentionHours));
                WriteConfig(now);
            }
            catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"the flight recorder cannot write to debug.db_dir '{_config.DbDir}': {e.Message}", e);
            }
        }
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>The newest finished task attempts, newest first.</summary>
    public List<FlightEvent> RecentTasks(int limit) => _tasks.Newest(limit);

    /// <summary>The newest task attempts that took at least <c>debug.log_min_duration_ms</c>, newest first.</summary>
    public List<FlightEvent> SlowTasks(int limit) => _tasks.Newest(limit, e => e.DurationMs >= _config.LogMinDurationMs);

    /// <summary>Finished tasks after <paramref name="afterSeq"/> that the live view shows: failed ones, and those of at least <c>debug.ws_min_duration_ms</c>.</summary>
    public List<FlightEvent> LiveTasks(long afterSeq, int limit) =>
        _tasks.Newest(limit, e => e.Seq > afterSeq && (e.Kind == FlightEvent.TaskFailed || e.DurationMs >= _config.WsMinDurationMs));

    public List<FlightEvent> RecentDeadLetters(int limit) => _deadLetters.Newest(limit);

    public void MessageConsumed(SourceMessage message) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), FlightEvent.Consumed)
        {
            Topic = message.Topic,
            Partition = message.Partition,
            Offset = message.Offset,
        });

    public void TaskStarted(ExecutorTask task, int attempt)
    {
        // With event_min_duration_ms the start is stored along with the finish, once the duration is known.
        if (_config.EventMinDurationMs > 0) return;
        Record(StartOf(task, attempt, _time.GetUtcNow()));
    }

    public void TaskFinished(ExecutorTask task, int attempt, in ExecutorOutcome outcome)
    {
        var now = _time.GetUtcNow();
        var result = outcome.Result;
        var error = outcome.Error;
        var duration = result?.Duration ?? error!.Duration;
        var failed = result is null;
        var keepOutput = _config.StoreOutput && (failed || duration.TotalMilliseconds >= _config.OutputMinDurationMs);
        var stored = duration.TotalMilliseconds >= _config.EventMinDurationMs;
        // Taken before the finish's sequence number, so the start sorts first.
        var start = stored && _config.EventMinDurationMs > 0 ? StartOf(task, attempt, now - duration) : null;
        var finished = new FlightEvent(NextSeq(), now, failed ? FlightEvent.TaskFailed : FlightEvent.TaskFinished)
        {
            TaskId = task.TaskId,
            Attempt = attempt,
            Offset = task.SourceOffsets.Count > 0 ? task.SourceOffsets[0] : null,
            ExitCode = result?.ExitCode ?? error!.ExitCode,
            DurationMs = duration.TotalMilliseconds,
            Detail = failed ? error!.Message : null,
            Stdout = keepOutput && result is not null ? Excerpt(result.Stdout) : null,
            Stderr = keepOutput ? Excerpt(result?.Stderr ?? error!.Stderr) : null,
        };
        _tasks.Add(finished);
        if (duration.TotalMilliseconds >= _config.LogMinDurationMs)
            LogSlowTask(_logger, task.TaskId, duration.TotalMilliseconds, finished.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none");
        if (!stored) return;
        if (start is not null) Record(start);
        Record(finished);
    }

    public void Delivered(string sinkKind, string sinkName, int payloads, TimeSpan duration) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), FlightEvent.Delivered)
        {
            Sink = $"{sinkKind}/{sinkName}",
            Count = payloads,
            DurationMs = duration.TotalMilliseconds,
        });

    public void DeliveryFailed(string sinkKind, string sinkName, int payloads, string error) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), FlightEvent.DeliveryFailed)
        {
            Sink = $"{sinkKind}/{sinkName}",
            Count = payloads,
            Detail = error,
        });

    public void DeadLettered(DeadLetter letter)
    {
        var e = new FlightEvent(NextSeq(), _time.GetUtcNow(), FlightEvent.DeadLettered)
        {
            Topic = letter.SourceTopic,
            Partition = letter.Partition,
            Offset = letter.Messages.Count > 0 ? letter.Messages[0].Offset : null,
            Sink = $"{letter.SinkKind}/{letter.SinkName}",
            Count = Math.Max(letter.Payloads.Count, letter.Messages.Count),
            Attempt = letter.AttemptCount,
            Detail = letter.Error,
        };
        _deadLetters.Add(e);
        Record(e);
    }

    public void Rebalanced(string kind, IReadOnlyList<int> partitions) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), kind switch { "assign" => "assigned", "revoke" => "revoked", _ => kind })
        {
            Count = partitions.Count,
            Detail = string.Join(",", partitions),
        });

    public void Committed(string topic, int partition, long offset) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), FlightEvent.Committed) { Topic = topic, Partition = partition, Offset = offset });

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        _buffer.Writer.TryComplete();
        if (_writer is not null) await _writer.ConfigureAwait(false);
        _store?.Dispose();
    }

    private long NextSeq() => Interlocked.Increment(ref _seq);

    private FlightEvent StartOf(ExecutorTask task, int attempt, DateTimeOffset at) =>
        new(NextSeq(), at, FlightEvent.TaskStarted)
        {
            TaskId = task.TaskId,
            Attempt = attempt,
            Offset = task.SourceOffsets.Count > 0 ? task.SourceOffsets[0] : null,
            Detail = task.Args.Count > 0 ? string.Join(' ', task.Args) : null,
        };

    private static string Excerpt(string text) => text.Length <= OutputExcerptChars ? text : text[..OutputExcerptChars];

    private void Record(FlightEvent e)
    {
        if (!_config.StoreEvents || _store is null || _stop.IsCancellationRequested) return;
        if (!_buffer.Writer.TryWrite(e))
        {
            _droppedFull.Increment();
            Interlocked.Increment(ref _dropped);
            return;
        }
        if (Interlocked.Increment(ref _pending) == _wakeAt) Volatile.Read(ref _wake).TrySetResult();
    }

    private async Task WriteLoopAsync()
    {
        var interval = TimeSpan.FromSeconds(_config.FlushIntervalSeconds);
        var rotation = TimeSpan.FromMinutes(_config.RotationIntervalMinutes);
        var stateInterval = TimeSpan.FromSeconds(_config.StateSyncIntervalSeconds);
        var nextRotation = _time.GetUtcNow() + rotation;
        var nextState = _time.GetUtcNow();
        var batch = new List<FlightEvent>();
        var failures = 0;
        while (true)
        {
            var stopping = _stop.IsCancellationRequested;
            if (!stopping)
            {
                try
                {
                    await Task.WhenAny(Task.Delay(interval, _time, _stop.Token), _wake.Task).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Stopping: one last round below.
                }
                Volatile.Write(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            }
            while (_buffer.Reader.TryRead(out var e)) batch.Add(e);
            Interlocked.Add(ref _pending, -Interlocked.Read(ref _pending));
            if (_store is null) return;
            var now = _time.GetUtcNow();
            try
            {
                if (batch.Count > 0)
                {
                    _store.Append(batch);
                    _store.Trim(now - TimeSpan.FromHours(_config.RetentionHours), _config.RetentionMaxEvents);
                }
                batch.Clear();
                failures = 0;
                if (_config.StoreState && _state is not null && now >= nextState)
                {
                    _store.WriteState(now, _state());
                    nextState = now + stateInterval;
                }
                if (now >= nextRotation)
                {
                    _store.Open(now);
                    WriteConfig(now);
                    var deleted = _store.DeleteFilesOlderThan(now - TimeSpan.FromHours(_config.RetentionHours));
                    LogRotated(_logger, _store.Path!, deleted);
                    nextRotation = now + rotation;
                }
            }
            catch (Exception e)
            {
                failures++;
                LogWriteFailed(_logger, e, batch.Count, failures, _config.MaxFlushRetries);
                if (failures >= _config.MaxFlushRetries || stopping)
                {
                    _droppedFailed.Add(batch.Count);
                    Interlocked.Add(ref _dropped, batch.Count);
                    batch.Clear();
                    failures = 0;
                }
            }
            if (stopping) return;
        }
    }

    private void WriteConfig(DateTimeOffset now)
    {
        if (!_config.StoreConfig) return;
        _store!.WriteConfig(now, _identity.WorkerId, _identity.ClusterName, _identity.DebugUrl, _identity.EnvJson, _identity.ConfigYaml);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Slow task {TaskId}: {Milliseconds:0} ms, exit code {ExitCode}")]
    private static partial void LogSlowTask(ILogger logger, string taskId, double milliseconds, string exitCode);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flight recorder rotated to {Path}; {Deleted} file(s) past debug.retention_hours deleted")]
    private static partial void LogRotated(ILogger logger, string path, int deleted);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Flight recorder could not store {Count} events (attempt {Attempt} of {MaxAttempts})")]
    private static partial void LogWriteFailed(ILogger logger, Exception error, int count, int attempt, int maxAttempts);
}
