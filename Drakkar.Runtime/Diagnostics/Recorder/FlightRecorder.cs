using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Drakkar.Execution;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks.Dlq;
using Microsoft.Extensions.Logging;

namespace Drakkar.Diagnostics.Recorder;

/// <summary>
/// The flight recorder: turns worker events into <see cref="FlightEvent"/>s and appends each to its recording thread's
/// <see cref="EventLane"/>, from which the debug UI reads the newest tasks and a background writer stores them. The
/// pipeline never waits: a lane is a ring, and events the writer has not reached when it is overwritten, or beyond
/// <c>debug.max_buffer</c> waiting, are dropped, oldest first, and counted
/// (<c>drakkar_recorder_dropped_events_total{reason="buffer_full"}</c>). The writer stores what it finds every
/// <c>debug.flush_interval_seconds</c>, and as soon as a lane holds <see cref="LaneWakeEvents"/> waiting events (a
/// quarter of <c>debug.max_buffer</c> if smaller), in one transaction per batch: events leave memory within tens of
/// milliseconds on a busy worker, and a transaction holds several packs (SQLite rewrites a table page and its
/// free-page list once per commit, so one pack per commit wrote about 400 bytes to the WAL per event of 70, and cost
/// about a third more CPU; docs/performance.md).
/// Consumed messages are stored as ranges (one row per run of consecutive offsets of a partition, per flush): a row
/// per message cost the pipeline more than the 5 % the recorder may take (docs/performance.md).
/// </summary>
internal sealed partial class FlightRecorder : IWorkerEvents, IAsyncDisposable
{
    /// <summary>
    /// Waiting events in one lane that wake the writer before <c>debug.flush_interval_seconds</c> (with the default
    /// <c>debug.max_buffer</c>): four packs, so that a transaction holds several (a worker's busy threads fill their
    /// lanes alike).
    /// </summary>
    internal const int LaneWakeEvents = 4 * EventStore.PackSize;

    /// <summary>stdout and stderr are stored up to this many characters each (the start of the output).</summary>
    internal const int OutputExcerptChars = 4096;

    // The calling thread's lane, and the recorder it belongs to (a process may hold several recorders, as tests do).
    [ThreadStatic]
    private static (FlightRecorder? Recorder, EventLane? Lane) t_lane;

    private readonly DebugConfig _config;
    private readonly Sinks.SinkSecretMasker _secrets;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<int, ConsumedRange> _consumed = new();
    // "kind/name" per sink, made once: a string per delivery would be a young object referenced from the buffer.
    private readonly ConcurrentDictionary<(string Kind, string Name), string> _sinkNames = new();
    private readonly MetricCell _droppedFull;
    private readonly MetricCell _droppedFailed;
    private readonly EventStore? _store;
    private readonly RecentRing<FlightEvent> _deadLetters;
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<string>? _state;
    private readonly (string WorkerId, string ClusterName, string DebugUrl, string EnvJson, string ConfigYaml) _identity;
    private readonly int _laneWakeAt;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Thread? _writer;
    // Every lane a thread has recorded into; replaced (never changed) when one is added, under _lanesGate.
    private EventLane[] _lanes = [];
    private readonly Lock _lanesGate = new();
    private readonly int _laneCapacity;
    private long _seq;
    private long _dropped;

    // config: the debug section. identity: what worker_config rows hold (debug.store_config). state: the worker's
    // state as JSON, stored every debug.state_sync_interval_seconds (debug.store_state).
    // secrets: the worker's configured secrets (masked in task output and errors wherever they appear verbatim); null
    // masks by shape only.
    public FlightRecorder(DebugConfig config, (string WorkerId, string ClusterName, string DebugUrl, string EnvJson, string ConfigYaml) identity,
        Func<string>? state, DrakkarMetrics metrics, ILogger logger, TimeProvider? time = null, Sinks.SinkSecretMasker? secrets = null)
    {
        _secrets = secrets ?? new Sinks.SinkSecretMasker();
        _config = config;
        _identity = identity;
        _state = state;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _laneWakeAt = Math.Max(1, Math.Min(LaneWakeEvents, config.MaxBuffer / 4));
        _droppedFull = metrics.RecorderEventsDropped.WithLabels("buffer_full");
        _droppedFailed = metrics.RecorderEventsDropped.WithLabels("write_failed");
        _deadLetters = new RecentRing<FlightEvent>(config.MaxUiRows);
        if (config.DbDir.Length > 0 && (config.StoreEvents || config.StoreConfig || config.StoreState))
            _store = new EventStore(config.DbDir, identity.WorkerId, storeOutput: config.StoreOutput);
        // A lane holds the UI's recent tasks of a thread that runs them all, and four times the events that wake the
        // writer, so that it is not overwritten before the writer reaches it: 16,384 slots (about 2 MB) by default,
        // made as the thread fills them.
        _laneCapacity = Math.Max(config.MaxUiRows, Storing ? Math.Min(config.MaxBuffer, 4 * _laneWakeAt) : 0) + EventLane.Margin;
    }

    public bool IsOn => true;

    /// <summary>The database file being written; null when nothing is stored (<c>db_dir</c> empty, every <c>store_*</c> off).</summary>
    public string? DatabasePath => _store?.Path;

    /// <summary>Every lane a thread has recorded into (one per recording thread alive at once).</summary>
    internal EventLane[] Lanes => Volatile.Read(ref _lanes);

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
                var reason = Storage.PrivateFiles.UnusableDirectory(_config.DbDir) ?? e.Message;
                throw new Hosting.WorkerStartupException($"the flight recorder cannot write to debug.db_dir '{_config.DbDir}': {reason}", e);
            }
        }
        // A thread of its own rather than a pool thread or a task: see WriteLoop.
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "drakkar-recorder" };
        _writer.Start();
    }

    /// <summary>The newest finished task attempts (of the last <c>debug.max_ui_rows</c>), newest first.</summary>
    public List<FlightEvent> RecentTasks(int limit) => NewestTasks(limit);

    /// <summary>The newest task attempts that took at least <c>debug.log_min_duration_ms</c>, newest first.</summary>
    public List<FlightEvent> SlowTasks(int limit) => NewestTasks(limit, e => e.DurationMs >= _config.LogMinDurationMs);

    /// <summary>Finished tasks after <paramref name="afterSeq"/> that the live view shows: failed ones, and those of at least <c>debug.ws_min_duration_ms</c>.</summary>
    public List<FlightEvent> LiveTasks(long afterSeq, int limit) =>
        NewestTasks(limit, e => e.Kind == FlightEvent.TaskFailed || e.DurationMs >= _config.WsMinDurationMs, stopAtOrBefore: afterSeq);

    public List<FlightEvent> RecentDeadLetters(int limit) => _deadLetters.Newest(limit);

    /// <summary>Extends the partition's open range of consecutive offsets; a gap (a rewind, a skip) closes it into a row.</summary>
    public void MessageConsumed(SourceMessage message)
    {
        if (!Storing) return;
        var range = _consumed.GetOrAdd(message.Partition, static (p, topic) => new ConsumedRange(topic, p), message.Topic);
        lock (range)
        {
            if (range.Count > 0 && message.Offset != range.Last + 1) Record(range.Take(NextSeq()));
            if (range.Count == 0)
            {
                range.First = message.Offset;
                range.Since = _time.GetUtcNow();
            }
            range.Last = message.Offset;
            range.Count++;
        }
    }

    public void TaskFinished(ExecutorTask task, int partition, int attempt, in ExecutorOutcome outcome)
    {
        var result = outcome.Result;
        var error = outcome.Error;
        var duration = result?.Duration ?? error!.Duration;
        var failed = result is null;
        // Kept for the page either way; stored only with debug.store_output (the store leaves it out otherwise).
        var keepOutput = failed || duration.TotalMilliseconds >= _config.OutputMinDurationMs;
        var finished = new FlightEvent(NextSeq(), _time.GetUtcNow(), failed ? FlightEvent.TaskFailed : FlightEvent.TaskFinished)
        {
            TaskId = task.TaskId,
            Attempt = attempt,
            Partition = partition,
            Offset = task.SourceOffsets.Count > 0 ? task.SourceOffsets[0] : null,
            ExitCode = result?.ExitCode ?? error!.ExitCode,
            DurationMs = duration.TotalMilliseconds,
            Detail = failed ? Mask(error!.Message) : null,
            Stdout = keepOutput && result is not null ? Excerpt(result.Stdout) : null,
            Stderr = keepOutput ? Excerpt(result?.Stderr ?? error!.Stderr) : null,
            // Shown in the UI either way; stored when storing and at least debug.event_min_duration_ms.
            MemoryOnly = !Storing || duration.TotalMilliseconds < _config.EventMinDurationMs,
        };
        Append(finished);
        if (duration.TotalMilliseconds >= _config.LogMinDurationMs)
            LogSlowTask(_logger, task.TaskId, duration.TotalMilliseconds, finished.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none");
    }

    public void Delivered(string sinkKind, string sinkName, int payloads, TimeSpan duration) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), FlightEvent.Delivered)
        {
            Sink = SinkName(sinkKind, sinkName),
            Count = payloads,
            DurationMs = duration.TotalMilliseconds,
        });

    public void DeliveryFailed(string sinkKind, string sinkName, int payloads, string error) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), FlightEvent.DeliveryFailed)
        {
            Sink = SinkName(sinkKind, sinkName),
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
            // None for the source messages' own failure (Arrange, a hook, a task): no sink was involved ("/" before).
            Sink = letter.SinkKind.Length == 0 && letter.SinkName.Length == 0 ? null : SinkName(letter.SinkKind, letter.SinkName),
            Count = Math.Max(letter.Payloads.Count, letter.Messages.Count),
            Attempt = letter.AttemptCount,
            Detail = letter.Error,
        };
        _deadLetters.Add(e);
        Record(e);
    }

    public void Rebalanced(string kind, IReadOnlyList<int> partitions) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), kind switch { "assign" => FlightEvent.Assigned, "revoke" => FlightEvent.Revoked, _ => kind })
        {
            Count = partitions.Count,
            Detail = string.Join(",", partitions),
        });

    public void Committed(string topic, int partition, long offset) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), FlightEvent.Committed) { Topic = topic, Partition = partition, Offset = offset });

    public void OutageStarted(string sinkKind, string sinkName) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), FlightEvent.OutageStarted)
        {
            Sink = SinkName(sinkKind, sinkName),
            Detail = "holding payloads (on_outage: pause); consumption paused",
        });

    public void OutageEnded(string sinkKind, string sinkName, TimeSpan held, bool back, string reason) =>
        Record(new FlightEvent(NextSeq(), _time.GetUtcNow(), FlightEvent.OutageEnded)
        {
            Sink = SinkName(sinkKind, sinkName),
            DurationMs = held.TotalMilliseconds,
            Detail = back ? "back: every held payload delivered" : "held payloads let go uncommitted: " + reason,
        });

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        // Join blocks: on a pool thread, not the caller's.
        if (_writer is { } writer) await Task.Run(writer.Join).ConfigureAwait(false);
        _store?.Dispose();
    }

    private string SinkName(string kind, string name) => _sinkNames.GetOrAdd((kind, name), static k => $"{k.Kind}/{k.Name}");

    private long NextSeq() => Interlocked.Increment(ref _seq);

    // Masked as the logs are (credentials in URLs and DSNs, bearer tokens): a task that prints the connection string it
    // failed on must not show its password on the page or in the database. Masked before it is cut: a DSN cut inside its
    // password no longer matches the patterns, and the password's start would show. So the excerpt and what follows it
    // up to as much again are masked (output can be megabytes), then cut.
    private string Excerpt(string text)
    {
        var masked = Mask(text.Length <= 2 * OutputExcerptChars ? text : text[..(2 * OutputExcerptChars)]);
        return masked.Length <= OutputExcerptChars ? masked : masked[..OutputExcerptChars];
    }

    private string Mask(string text) => _secrets.Apply(text);

    /// <summary>False when nothing is stored (then events only feed the UI's memory).</summary>
    private bool Storing => _config.StoreEvents && _store is not null && !_stop.IsCancellationRequested;

    /// <summary>Appends an event to be stored (nothing when the recorder stores nothing).</summary>
    private void Record(in FlightEvent e)
    {
        if (Storing) Append(e);
    }

    /// <summary>Appends <paramref name="e"/> to the calling thread's lane, and wakes the writer when that lane has enough waiting.</summary>
    private void Append(in FlightEvent e)
    {
        var lane = Lane();
        lane.Add(e);
        if (Storing && lane.Written - lane.Stored >= _laneWakeAt
            && Volatile.Read(ref _wake) is { Task.IsCompleted: false } wake)
        {
            wake.TrySetResult();
        }
    }

    private EventLane Lane()
    {
        var (recorder, lane) = t_lane;
        if (ReferenceEquals(recorder, this)) return lane!;
        lane = TakeLane();
        t_lane = (this, lane);
        return lane;
    }

    /// <summary>
    /// A lane for the calling thread: one whose thread has ended if there is one (its events stay in order: any seq
    /// taken now is above every seq it holds), so that a thread pool that retires and starts threads does not add a
    /// lane per thread it ever ran.
    /// </summary>
    private EventLane TakeLane()
    {
        var current = Thread.CurrentThread;
        lock (_lanesGate)
        {
            foreach (var lane in _lanes)
            {
                if (lane.Owner.IsAlive) continue;
                lane.Owner = current;
                return lane;
            }
            var added = new EventLane(_laneCapacity, current);
            Volatile.Write(ref _lanes, [.. _lanes, added]);
            return added;
        }
    }

    /// <summary>
    /// The newest task events of all lanes, newest first (the lanes merged by seq), of the last <c>debug.max_ui_rows</c>
    /// tasks: at most <paramref name="limit"/>, those matching <paramref name="keep"/>, none at or before
    /// <paramref name="stopAtOrBefore"/>.
    /// </summary>
    private List<FlightEvent> NewestTasks(int limit, Func<FlightEvent, bool>? keep = null, long stopAtOrBefore = 0)
    {
        var lanes = Volatile.Read(ref _lanes);
        var result = new List<FlightEvent>();
        var next = new long[lanes.Length];
        var heads = new FlightEvent[lanes.Length];
        var has = new bool[lanes.Length];
        for (var l = 0; l < lanes.Length; l++)
        {
            next[l] = lanes[l].Written - 1;
            has[l] = OlderTask(lanes[l], ref next[l], out heads[l]);
        }
        for (var seen = 0; seen < _config.MaxUiRows && result.Count < limit; seen++)
        {
            var pick = -1;
            for (var l = 0; l < lanes.Length; l++)
                if (has[l] && (pick < 0 || heads[l].Seq > heads[pick].Seq)) pick = l;
            if (pick < 0 || heads[pick].Seq <= stopAtOrBefore) break;
            if (keep is null || keep(heads[pick])) result.Add(heads[pick]);
            has[pick] = OlderTask(lanes[pick], ref next[pick], out heads[pick]);
        }
        return result;
    }

    /// <summary>The lane's newest task event at or before <paramref name="position"/>, which moves past it; false when none is left to read.</summary>
    private static bool OlderTask(EventLane lane, ref long position, out FlightEvent task)
    {
        for (; position >= 0; position--)
        {
            if (!lane.TryRead(position, out task)) break;
            if (task.Kind is not (FlightEvent.TaskFinished or FlightEvent.TaskFailed)) continue;
            position--;
            return true;
        }
        task = default;
        return false;
    }

    /// <summary>
    /// Moves the events waiting in the lanes, merged in seq order (each lane already is), and then the consumed ranges
    /// still open, into <paramref name="batch"/>, after what a failed round left there. Events the lanes overwrote before
    /// the writer reached them, and the oldest beyond <c>debug.max_buffer</c>, are counted as dropped.
    /// </summary>
    private void Drain(List<FlightEvent> batch)
    {
        var start = batch.Count;
        var lost = MergeInPlace(Volatile.Read(ref _lanes), batch);
        var excess = batch.Count - start - _config.MaxBuffer;
        if (excess > 0)
        {
            batch.RemoveRange(start, excess);
            lost += excess;
        }
        if (lost > 0)
        {
            _droppedFull.Add(lost);
            Interlocked.Add(ref _dropped, lost);
        }
        foreach (var range in _consumed.Values)
        {
            lock (range)
            {
                if (range.Count > 0) batch.Add(range.Take(NextSeq()));
            }
        }
    }

    /// <summary>Called between reading the lanes in place and checking them (tests: an owner that moves on meanwhile).</summary>
    internal Action? LanesReadForTests { get; set; }

    // Where each event a round appended came from, its position and lane packed (position << 16 | lane), for dropping
    // those found overwritten (a process has far fewer than 65,536 threads, so far fewer lanes); the writer's own,
    // kept from round to round.
    private long[] _origins = [];

    /// <summary>
    /// Appends the events to store waiting in the lanes to <paramref name="into"/>, merged in seq order straight from
    /// the slots (one copy per event: copying each lane out first and merging the copies cost a quarter of the writer),
    /// and moves each lane past them. Returns how many were lost: overwritten before the round, or while it read them
    /// (the writer about a whole ring behind: an owner came within the margin of slots read, which are dropped, the
    /// rest of the round kept).
    /// </summary>
    private long MergeInPlace(EventLane[] lanes, List<FlightEvent> into)
    {
        var start = into.Count;
        var from = new long[lanes.Length];
        var next = new long[lanes.Length];
        var end = new long[lanes.Length];
        for (var l = 0; l < lanes.Length; l++)
        {
            // The start first: the end read after it is never before it, however far the owner got meanwhile.
            from[l] = next[l] = lanes[l].Unstored;
            end[l] = lanes[l].Written;
        }
        var toRead = 0L;
        for (var l = 0; l < lanes.Length; l++) toRead += end[l] - from[l];
        if (_origins.Length < toRead) _origins = new long[toRead];
        var origins = _origins;
        var read = 0;
        while (true)
        {
            var (pick, pickSeq) = (-1, 0L);
            for (var l = 0; l < lanes.Length; l++)
            {
                if (next[l] >= end[l]) continue;
                var seq = lanes[l].Slot(next[l]).Seq;
                if (pick < 0 || seq < pickSeq) (pick, pickSeq) = (l, seq);
            }
            if (pick < 0) break;
            var position = next[pick]++;
            ref readonly var e = ref lanes[pick].Slot(position);
            if (e.MemoryOnly) continue;
            into.Add(e);
            origins[read++] = position << 16 | (long)pick;
        }
        LanesReadForTests?.Invoke();
        var lost = 0L;
        var intactFrom = new long[lanes.Length];
        var torn = false;
        for (var l = 0; l < lanes.Length; l++)
        {
            intactFrom[l] = lanes[l].IntactFrom();
            torn |= intactFrom[l] > from[l];
            // Overwritten before the round, and read while being (or about to be) overwritten.
            lost += from[l] - lanes[l].Stored + Math.Clamp(intactFrom[l] - from[l], 0, end[l] - from[l]);
            lanes[l].Stored = end[l];
        }
        if (torn)
        {
            var kept = start;
            for (var i = start; i < into.Count; i++)
            {
                var origin = origins[i - start];
                if (origin >> 16 >= intactFrom[(int)(origin & 0xFFFF)]) into[kept++] = into[i];
            }
            into.RemoveRange(kept, into.Count - kept);
        }
        return lost;
    }

    /// <summary>Consecutive offsets of one partition consumed since the range opened; guarded by its own lock.</summary>
    private sealed class ConsumedRange(string topic, int partition)
    {
        public long First;
        public long Last;
        public int Count;
        public DateTimeOffset Since;

        public FlightEvent Take(long seq)
        {
            var e = new FlightEvent(seq, Since, FlightEvent.Consumed) { Topic = topic, Partition = partition, Offset = First, Count = Count };
            Count = 0;
            return e;
        }
    }

    /// <summary>
    /// The writer, on a thread of its own (it blocks in SQLite and in file writes, which must not hold a pool thread),
    /// at the pipeline's priority. Encoding and storing an event costs about 0.4 µs of CPU. It used to run at nice 10,
    /// which bought no throughput the orchestration bench could measure and put the pipeline under it: a collection
    /// the writer's allocations start runs on the writer's thread while every managed thread waits (workstation GC),
    /// and a thread the runtime starts from it (the background GC's, the tiered compiler's) inherits its nice value,
    /// so on cores busy with the executor's processes those ran at a tenth of a core (docs/performance.md). If it falls
    /// behind for long, the lanes overwrite what it has not reached and those events are dropped and counted, as the
    /// recorder promises, instead of the pipeline slowing down. Nothing here queues work to the pool or completes a
    /// task others await, so no one's continuations run here.
    /// </summary>
    private void WriteLoop()
    {
        var interval = TimeSpan.FromSeconds(_config.FlushIntervalSeconds);
        var rotation = TimeSpan.FromMinutes(_config.RotationIntervalMinutes);
        var stateInterval = TimeSpan.FromSeconds(_config.StateSyncIntervalSeconds);
        var nextRotation = _time.GetUtcNow() + rotation;
        var nextState = _time.GetUtcNow();
        var batch = new List<FlightEvent>(4 * _laneWakeAt);
        var failures = 0;
        while (true)
        {
            var stopping = _stop.IsCancellationRequested;
            if (!stopping)
            {
                // Returns on the first of the two, a cancelled delay included (stopping: one last round below).
                Task.WaitAny(Task.Delay(interval, _time, _stop.Token), _wake.Task);
            }
            if (_store is null) return;
            if (_config.StoreEvents) Drain(batch);
            // Armed again once the lanes are read, not before: a lane moves past its events only when all are read, so
            // until then it still holds its threshold's worth, and a wake would start the next round at once with what
            // little came in meanwhile (a transaction of a few events, each commit rewriting the table's pages). A lane
            // still past its threshold wakes the next round with its next event.
            if (!stopping) Volatile.Write(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            var now = _time.GetUtcNow();
            try
            {
                if (batch.Count > 0)
                {
                    _store.Append(batch, now - TimeSpan.FromHours(_config.RetentionHours), _config.RetentionMaxEvents);
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
