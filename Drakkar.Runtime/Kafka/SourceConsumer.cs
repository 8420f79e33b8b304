using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Confluent.Kafka;
using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Drakkar.Sinks;
using Microsoft.Extensions.Logging;

namespace Drakkar.Kafka;

/// <summary>
/// Consumes the source topic: one poll thread feeds one <see cref="PartitionPipeline"/> per assigned partition,
/// applies global backpressure by pausing and resuming the assignment, drains partitions on revoke
/// (cooperative-sticky), and commits each partition's watermark, serialized and coalesced.
/// </summary>
internal sealed partial class SourceConsumer : IAsyncDisposable
{
    private readonly DrakkarConfig _config;
    private readonly DrakkarHandlerBase _handler;
    private readonly ITaskExecutor _executor;
    private readonly IPayloadDelivery _delivery;
    private readonly DrakkarMetrics _metrics;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly WorkerLoad _load;
    private readonly PipelineSettings _settings;
    private readonly ConcurrentDictionary<int, PartitionPipeline> _pipelines = new();
    private readonly CancellationTokenSource _stopPolling = new();
    private readonly TaskCompletionSource _firstPoll = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private Thread? _pollThread;
    private Task? _commitLoop;
    private readonly TaskCompletionSource _pollStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<Exception> _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly OffsetCommitter _committer;
    private bool _paused;
    // Set by StopAsync: the poll thread pauses everything and dispatches nothing more, but keeps polling.
    private volatile bool _stopping;
    private bool _pausedForStop;
    // Null until StopAsync tried to leave the group; false when that leave did not finish in time.
    private bool? _closed;
    // True once a backpressure pause reached librdkafka (see ApplyBackpressure); poll thread only.
    private bool _pausedInKafka;
    // Poll thread only: the partitions a record was taken from since the last resume from a librdkafka pause (the last
    // one apart, so that a run of one partition's records costs a comparison each), and the partitions whose resume
    // waits until the ones that got nothing last time were served (see ResumeFairly).
    private readonly HashSet<int> _servedSinceResume = [];
    private int _lastServed = -1;
    private List<TopicPartition>? _resumeLater;
    private long _resumeLaterBy;
    // Poll thread only: partitions without a position that went first at the last resume, and those of them that
    // yielded nothing then (empty or caught up), which do not go first again until they yield a record.
    private readonly List<TopicPartition> _firstUnpositioned = [];
    private readonly HashSet<int> _emptyUnpositioned = [];
    private long _pausedSince;
    // Poll thread only: partitions a sink paused, and when they may resume.
    private readonly Dictionary<int, DateTime> _resumeAt = [];
    // Poll thread only: partitions paused because their dead letter cannot be stored.
    private readonly HashSet<int> _blocked = [];
    // Poll thread only: where a rewound partition restarts, until its first record arrives (its position is stale).
    private readonly Dictionary<int, long> _rewoundTo = [];
    // Poll thread only: undecodable messages, and each client error code, are logged at most once per 10 s.
    private LogThrottle _undecodableLog;
    private readonly Dictionary<ErrorCode, LogThrottle> _kafkaErrorLogs = [];
    // High watermarks asked of the broker for Partitions (see AskBrokerForWatermarks), by partition.
    private readonly ConcurrentDictionary<int, long> _brokerHighs = new();
    private long _brokerHighsAskedAt;
    private Task _brokerHighsQuery = Task.CompletedTask;
    private int _askingBroker;

    public SourceConsumer(DrakkarConfig config, string clientId, DrakkarHandlerBase handler, ITaskExecutor executor,
        IPayloadDelivery delivery, DrakkarMetrics metrics, ILoggerFactory loggers)
    {
        _config = config;
        _handler = handler;
        _executor = executor;
        _delivery = delivery;
        _metrics = metrics;
        _loggers = loggers;
        _logger = loggers.CreateLogger("Drakkar.Kafka.SourceConsumer");
        _load = WorkerLoad.From(config.Executor, delivery);
        metrics.SinkPayloadsInFlight.SampleWith(() => delivery.InFlightPayloads);
        _settings = PipelineSettings.From(config.Executor);
        KafkaNativeLibrary.EnsureLoaded();
        var kafka = config.Kafka;
        var consumerConfig = new ConsumerConfig
        {
            BootstrapServers = kafka.Brokers,
            GroupId = kafka.ConsumerGroup,
            ClientId = clientId,
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            MaxPollIntervalMs = kafka.MaxPollIntervalMs,
            // Bounds what librdkafka prefetches per partition, so memory stays bounded under any lag.
            QueuedMaxMessagesKbytes = 8 * 1024,
            // librdkafka keeps up to 100k messages per partition prefetched by default; a pause discards them and a
            // resume fetches them again, so a small prefetch keeps pause/resume cycles cheap.
            QueuedMinMessages = Math.Max(1_000, config.Executor.WindowSize * 4),
            LogConnectionClose = false,
            FetchWaitMaxMs = 50,
            FetchErrorBackoffMs = 50,
            // With the small prefetch above a partition often has queued.min.messages waiting; librdkafka 2.x then
            // postpones that partition's next fetch by fetch.queue.backoff.ms (default 1 s), which stalled the worker.
            FetchQueueBackoffMs = 10,
            // A subscription to one named topic: every record is of that topic, so the client need not decode the
            // topic's name into a new string per record (RecordTopic). A pattern (^...) keeps it.
            ConsumeResultFields = kafka.SourceTopic.StartsWith('^') ? "all" : "timestamp,headers",
        };
        if (kafka.GroupInstanceId.Length > 0) consumerConfig.GroupInstanceId = kafka.GroupInstanceId;
        if (kafka.UsesConsumerProtocol)
        {
            // KIP-848: the broker owns the session timeout, the heartbeat interval and the assignor.
            consumerConfig.GroupProtocol = GroupProtocol.Consumer;
        }
        else
        {
            consumerConfig.PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky;
            consumerConfig.SessionTimeoutMs = kafka.SessionTimeoutMs;
            consumerConfig.HeartbeatIntervalMs = kafka.HeartbeatIntervalMs;
        }
        KafkaSecurity.Apply(consumerConfig, kafka);
        _consumer = new ConsumerBuilder<byte[]?, byte[]?>(consumerConfig)
            .SetPartitionsAssignedHandler((_, partitions) => OnAssigned(partitions))
            .SetPartitionsRevokedHandler((_, partitions) => OnRevoked(partitions))
            .SetPartitionsLostHandler((_, partitions) => OnLost(partitions))
            .SetErrorHandler((_, error) => OnError(error))
            .SetLogHandler((_, message) => LogLibrdkafka(message.Level.ToString(), message.Facility, message.Message))
            .Build();
        _committer = new OffsetCommitter(_consumer, delivery, metrics, loggers.CreateLogger("Drakkar.Kafka.OffsetCommitter"));
    }

    /// <summary>
    /// Completes with the error when the poll loop ended on its own (a defect, not a stop): the worker consumes nothing
    /// more, so it must not stay up looking healthy.
    /// </summary>
    public Task<Exception> Failed => _failed.Task;

    /// <summary>Runs at the start of every round of the poll loop, on its thread: lets a test make the loop fail.</summary>
    internal Action? BeforeEachPoll { get; set; }

    /// <summary>Completes after the first poll returned (the worker is consuming).</summary>
    public Task FirstPoll => _firstPoll.Task;

    /// <summary>Partitions currently assigned.</summary>
    public IReadOnlyCollection<int> AssignedPartitions => [.. _pipelines.Keys];

    public WorkerLoad Load => _load;

    /// <summary>
    /// Each assigned partition's progress with the broker's high watermark (-1 when not known yet), for the debug UI
    /// and the recorder's state rows. Safe from any thread.
    /// </summary>
    public IReadOnlyList<PartitionProgress> Partitions
    {
        get
        {
            AskBrokerForWatermarks();
            var views = new List<PartitionProgress>();
            foreach (var pipeline in _pipelines.Values)
            {
                var (committed, consumed, open) = pipeline.Progress;
                long high = -1;
                try
                {
                    high = _consumer.GetWatermarkOffsets(new TopicPartition(pipeline.Topic, pipeline.Partition)).High.Value;
                }
                catch (Exception e) when (e is KafkaException or ObjectDisposedException)
                {
                    // Not fetched yet, or the consumer is closing: shown as unknown.
                }
                if (_brokerHighs.TryGetValue(pipeline.Partition, out var asked)) high = Math.Max(high, asked);
                views.Add(new PartitionProgress(pipeline.Topic, pipeline.Partition, committed, consumed, high, open));
            }
            views.Sort((a, b) => a.Partition.CompareTo(b.Partition));
            return views;
        }
    }

    /// <summary>How often <see cref="Partitions"/> asks the broker for the high watermarks, at most.</summary>
    internal static readonly TimeSpan BrokerWatermarkInterval = TimeSpan.FromSeconds(5);

    /// <summary>
    /// librdkafka's own high watermark moves only with fetches, and a paused partition (backpressure, a sink's
    /// outage) is not fetched: its lag stayed frozen while the backlog grew, just when an operator looks. So the
    /// broker is asked in the background, one partition after the other, at most every
    /// <see cref="BrokerWatermarkInterval"/> and only while something reads <see cref="Partitions"/>; the higher of
    /// the two is shown.
    /// </summary>
    private void AskBrokerForWatermarks()
    {
        if (_stopPolling.IsCancellationRequested
            || Stopwatch.GetElapsedTime(Interlocked.Read(ref _brokerHighsAskedAt)) < BrokerWatermarkInterval
            || Interlocked.CompareExchange(ref _askingBroker, 1, 0) != 0) return;
        Interlocked.Exchange(ref _brokerHighsAskedAt, Stopwatch.GetTimestamp());
        _brokerHighsQuery = Task.Run(() =>
        {
            try
            {
                foreach (var pipeline in _pipelines.Values)
                {
                    if (_stopPolling.IsCancellationRequested) return;
                    _brokerHighs[pipeline.Partition] = _consumer.QueryWatermarkOffsets(
                        new TopicPartition(pipeline.Topic, pipeline.Partition), TimeSpan.FromSeconds(1)).High.Value;
                }
            }
            catch (Exception e) when (e is KafkaException or ObjectDisposedException)
            {
                // The broker did not answer in time, or the consumer is closing: the next read asks again.
            }
            finally
            {
                Volatile.Write(ref _askingBroker, 0);
            }
        });
    }

    public void Start()
    {
        _consumer.Subscribe(_config.Kafka.SourceTopic);
        _pollThread = new Thread(PollLoop) { IsBackground = true, Name = "drakkar-poll" };
        _pollThread.Start();
        var interval = TimeSpan.FromMilliseconds(Math.Max(_config.Kafka.CommitIntervalMs, 1));
        _commitLoop = Task.Run(() => _committer.RunAsync(() => _pipelines.Values, interval, _stopPolling.Token));
        LogSubscribed(_config.Kafka.SourceTopic, _config.Kafka.ConsumerGroup, _config.Kafka.Brokers);
    }

    /// <summary>
    /// Graceful stop (SPEC O8) within <paramref name="bound"/>, commit and leave included: take nothing new, finish
    /// the work already started, commit exactly that, and leave the group so the coordinator reassigns at once.
    /// </summary>
    public async Task StopAsync(TimeSpan bound)
    {
        if (bound < TimeSpan.Zero) bound = TimeSpan.Zero;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan Left() => bound - clock.Elapsed > MinimumStep ? bound - clock.Elapsed : MinimumStep;
        // Keep polling while the partitions drain, so this member still answers the group protocol (a rebalance that
        // another member starts meanwhile completes at once), but take nothing new: every partition is paused and what
        // was already fetched is left for the next owner.
        _stopping = true;
        var pipelines = _pipelines.Values.ToArray();
        // The drains get the bound less a reserve for the commit and the leave.
        var reserve = TimeSpan.FromMilliseconds(Math.Min(2_000, bound.TotalMilliseconds / 5));
        await Task.WhenAll(pipelines.Select(p => p.DrainAsync(bound - reserve))).ConfigureAwait(false);
        if (!await Within(_committer.CommitAsync(pipelines, final: true), Left()).ConfigureAwait(false)) LogStopStepOverran("the final commit");
        CountHandover(pipelines, "stop");
        await _stopPolling.CancelAsync().ConfigureAwait(false);
        if (_pollThread is not null) await _pollStopped.Task.ConfigureAwait(false);
        // A broker query still under way must end before the handle is destroyed under it.
        await _brokerHighsQuery.ConfigureAwait(false);
        if (_commitLoop is not null) await Within(_commitLoop, Left()).ConfigureAwait(false);
        _pipelines.Clear();
        // Leaving the group runs the revoke handler, which finds nothing left to drain. A leave that does not finish
        // in time (broker unreachable) is abandoned: the handle is then never destroyed under it (see DisposeAsync).
        var closed = await Within(Task.Run(CloseConsumer), Left()).ConfigureAwait(false);
        _closed = closed;
        // Leaving runs OnRevoke: when that is what hangs, the line says so rather than point at the broker.
        if (!closed) LogStopStepOverran(Volatile.Read(ref _hookRunning) is { } hook ? $"leaving the group (the handler's {hook} has not returned)" : "leaving the group");
    }

    /// <summary>How long a consumer disposed without <see cref="StopAsync"/> waits to leave its group.</summary>
    private static readonly TimeSpan DisposeLeaveBound = TimeSpan.FromSeconds(5);

    /// <summary>The shortest wait a stop step gets even when the bound is already spent.</summary>
    private static readonly TimeSpan MinimumStep = TimeSpan.FromMilliseconds(500);

    private static async Task<bool> Within(Task task, TimeSpan limit) =>
        await Task.WhenAny(task, Task.Delay(limit)).ConfigureAwait(false) == task;

    private void CloseConsumer()
    {
        try
        {
            _consumer.Close();
        }
        catch (KafkaException e)
        {
            LogCloseFailed(e);
        }
    }

    /// <summary>
    /// Releases the consumer. Polling and committing stop first: librdkafka must never be called on a handle that
    /// is being destroyed (a worker disposed without <see cref="StopAsync"/>, e.g. when startup failed).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await _stopPolling.CancelAsync().ConfigureAwait(false);
        if (_pollThread is not null) await _pollStopped.Task.ConfigureAwait(false);
        await _brokerHighsQuery.ConfigureAwait(false);
        if (_commitLoop is not null) await _commitLoop.ConfigureAwait(false);
        foreach (var pipeline in _pipelines.Values) pipeline.Abort();
        _pipelines.Clear();
        // Disposed without StopAsync: leave the group here, bounded. Destroying a member that never left while its
        // group rebalances can block librdkafka's destroy for good (seen with two members of one group disposed one
        // after the other), and the others would otherwise wait out the session timeout for its partitions.
        if (_closed is null && _pollThread is not null) _closed = await Within(Task.Run(CloseConsumer), DisposeLeaveBound).ConfigureAwait(false);
        // A consumer whose leave is still under way is left to the process exit rather than destroyed under it.
        if (_closed is not false) _consumer.Dispose();
        _stopPolling.Dispose();
    }

    private void PollLoop()
    {
        var stop = _stopPolling.Token;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                BeforeEachPoll?.Invoke();
                if (_stopping)
                {
                    ServeStopping();
                    continue;
                }
                try
                {
                    ServeSinkBackpressure();
                    ServeBlockedPartitions();
                    ApplyBackpressure();
                    if (_paused && !_pausedInKafka)
                    {
                        // Held back without a librdkafka pause: take nothing new while the queues drain.
                        _load.WaitForRoom(SoftPauseCheck);
                        continue;
                    }
                }
                catch (KafkaException e)
                {
                    _metrics.ConsumerErrors.Increment();
                    LogConsumeFailed(e.Error.Reason, e.Error.Code);
                }
                ConsumeResult<byte[]?, byte[]?>? record;
                try
                {
                    // The first poll does not wait (it starts the group join and marks the worker ready); later ones wait
                    // briefly while paused, so a resume is not held back by an idle poll.
                    record = _consumer.Consume(!_firstPoll.Task.IsCompleted ? 0 : _paused ? 5 : 100);
                }
                catch (ConsumeException e)
                {
                    _metrics.ConsumerErrors.Increment();
                    LogConsumeFailed(e.Error.Reason, e.Error.Code);
                    continue;
                }
                _firstPoll.TrySetResult();
                // A record returned after the stop began is left for the next owner (nothing past it is committed).
                if (record is null || record.IsPartitionEOF || _stopping) continue;
                try
                {
                    Dispatch(record);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // One bad record must not stop consumption for every partition, nor be skipped: it goes to the
                    // DLQ as it was consumed, and its offset is committed only once that record is stored.
                    _metrics.ConsumerErrors.Increment();
                    LogDispatchFailed(e, record.Partition.Value, record.Offset.Value);
                    if (_pipelines.TryGetValue(record.Partition.Value, out var pipeline))
                        pipeline.EnqueueFailed(RawMessage(record), $"dispatch failed: {e.GetType().Name}: {e.Message}");
                }
            }
        }
        catch (Exception e)
        {
            LogPollLoopFailed(e);
            _failed.TrySetResult(e);
        }
        finally
        {
            _firstPoll.TrySetResult();
            _pollStopped.TrySetResult();
        }
    }

    private void Dispatch(ConsumeResult<byte[]?, byte[]?> record)
    {
        var partition = record.Partition.Value;
        _rewoundTo.Remove(partition);
        if (!_pipelines.TryGetValue(partition, out var pipeline))
        {
            // Only possible for a record fetched just before its partition was revoked; it will be redelivered.
            return;
        }
        var message = record.Message;
        var source = _handler.CreateMessage(RecordTopic(record), partition, record.Offset.Value, message.Key, message.Value,
            message.Timestamp.UtcDateTime, Headers(message));
        // Refused while the partition drains (a record fetched just before a stop or a revoke): it stays uncommitted.
        if (!pipeline.Enqueue(source)) return;
        if (partition != _lastServed)
        {
            _servedSinceResume.Add(partition);
            _lastServed = partition;
        }
        _metrics.Events.MessageConsumed(source);
        if (source.DecodeError is not null) ReportUndecodable(source);
    }

    /// <summary>
    /// Counts an undecodable message and logs it, at most once per <see cref="LogThrottle.Interval"/> (a topic full
    /// of garbage must not flood the log; the counter has every one, and the next line says how many were not logged).
    /// Runs on the poll thread only.
    /// </summary>
    private void ReportUndecodable(SourceMessage source)
    {
        _metrics.DecodeErrors.Increment();
        if (_undecodableLog.Allow(out var notLogged))
            LogUndecodable(source.Topic, source.Partition, source.Offset, source.Value.Length, SecretMasker.Mask(source.DecodeError), notLogged);
    }

    /// <summary>While stopping: everything assigned stays paused; polls serve the group protocol and drop any record.</summary>
    private void ServeStopping()
    {
        try
        {
            if (!_pausedForStop)
            {
                _consumer.Pause(_consumer.Assignment);
                _pausedForStop = true;
            }
            // A record still returned was fetched before the pause; it is not committed, so the next owner reads it.
            _consumer.Consume(50);
        }
        catch (KafkaException e)
        {
            _metrics.ConsumerErrors.Increment();
            LogConsumeFailed(e.Error.Reason, e.Error.Code);
        }
    }

    private static IReadOnlyList<KeyValuePair<string, byte[]>> Headers(Message<byte[]?, byte[]?> message) => KafkaHeaders.Of(message.Headers);

    /// <summary>A record's topic: the subscribed one, unless the subscription is a pattern (then the client names it).</summary>
    private string RecordTopic(ConsumeResult<byte[]?, byte[]?> record) => record.Topic ?? _config.Kafka.SourceTopic;

    /// <summary>The record as consumed, without decoding: what the DLQ keeps when dispatching it failed.</summary>
    private SourceMessage RawMessage(ConsumeResult<byte[]?, byte[]?> record) => new()
    {
        Topic = RecordTopic(record), Partition = record.Partition.Value, Offset = record.Offset.Value, Key = record.Message.Key,
        Value = record.Message.Value ?? [], Timestamp = record.Message.Timestamp.UtcDateTime, Headers = Headers(record.Message),
    };

    /// <summary>How long a backpressure pause only stops pulling records before it becomes a librdkafka pause.</summary>
    private static readonly TimeSpan SoftPauseLimit = TimeSpan.FromMilliseconds(200);

    /// <summary>How often a soft pause re-checks what has no signal (payloads in flight, sink pauses, the stop).</summary>
    private static readonly TimeSpan SoftPauseCheck = TimeSpan.FromMilliseconds(2);

    /// <summary>
    /// Global backpressure (SPEC O6). A pause first only stops taking records from librdkafka (its prefetch is
    /// bounded by queued.min.messages and queued.max.messages.kbytes, so memory stays bounded); most pauses end within
    /// milliseconds that way. Only a pause that lasts past <see cref="SoftPauseLimit"/> pauses the partitions in
    /// librdkafka, which keeps the group protocol served but drops the prefetched records (they are fetched again on
    /// resume), so short pauses no longer cost a refetch.
    /// </summary>
    private void ApplyBackpressure()
    {
        _metrics.TotalQueued.Set(_load.Current);
        if (_load.Update())
        {
            _paused = _load.Paused;
            _metrics.BackpressureActive.Set(_paused ? 1 : 0);
            if (_paused)
            {
                _pausedSince = System.Diagnostics.Stopwatch.GetTimestamp();
                LogPaused(_load.Current, _load.High, _delivery.InFlightPayloads, _load.MaxInFlightPayloads, _delivery.HoldingForOutage);
            }
            else
            {
                if (_pausedInKafka)
                {
                    ResumeFairly();
                    _pausedInKafka = false;
                }
                LogResumed(_load.Current, _load.Low, _delivery.InFlightPayloads, _load.MaxInFlightPayloads / 2);
            }
        }
        if (_paused && !_pausedInKafka && System.Diagnostics.Stopwatch.GetElapsedTime(_pausedSince) >= SoftPauseLimit)
        {
            _consumer.Pause(_consumer.Assignment);
            _pausedInKafka = true;
            // Still paused, those not resumed yet are the first to go next time (they were served nothing).
            _resumeLater = null;
        }
        else if (_resumeLater is not null && (_servedSinceResume.Count > 0 || System.Diagnostics.Stopwatch.GetTimestamp() >= _resumeLaterBy))
        {
            ResumeAtPosition([.. _resumeLater.Where(Resumable)]);
            _resumeLater = null;
        }
    }

    /// <summary>
    /// The longest a partition served last time waits, after a resume, for the ones that were not: a partition with a
    /// position is sought and fetches at once; one that has not yielded a record since it was assigned has none to
    /// seek to, and librdkafka's plain resume starts its fetch about half a second later.
    /// </summary>
    private static readonly TimeSpan FairResumeLimit = TimeSpan.FromMilliseconds(100), FairResumeLimitUnpositioned = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Resumes from a librdkafka pause. The pause dropped every partition's prefetched records, so each fetches again,
    /// and the records are taken in the order they arrive: the partition whose fetch came back first filled the load
    /// up to the next pause, and with a long backlog it did so cycle after cycle while another partition of the worker
    /// got nothing at all (46 s in a newcomer's run). So the partitions that were served nothing since the last resume
    /// and may have records (their fetched high watermark is past their position, or not known yet) resume first; the
    /// others resume as soon as one of those yields a record, or after <see cref="FairResumeLimit"/>. Partitions a
    /// sink or the DLQ paused stay paused until their own reason is over.
    /// </summary>
    private void ResumeFairly()
    {
        var resumable = _consumer.Assignment.Where(Resumable).ToList();
        // A partition with no position that went first and yielded nothing is empty or caught up, not starved: it does
        // not go first again (its 1 s would stall the others every cycle) until it has yielded a record.
        foreach (var tp in _firstUnpositioned)
            if (!_servedSinceResume.Contains(tp.Partition.Value)) _emptyUnpositioned.Add(tp.Partition.Value);
        _firstUnpositioned.Clear();
        foreach (var partition in _servedSinceResume) _emptyUnpositioned.Remove(partition);
        var first = resumable.Where(tp => !_servedSinceResume.Contains(tp.Partition.Value) && !_emptyUnpositioned.Contains(tp.Partition.Value) && MayHaveRecords(tp)).ToList();
        _servedSinceResume.Clear();
        _lastServed = -1;
        if (first.Count == 0 || first.Count == resumable.Count)
        {
            ResumeAtPosition(resumable);
            return;
        }
        ResumeAtPosition(first);
        _resumeLater = [.. resumable.Except(first)];
        _firstUnpositioned.AddRange(first.Where(tp => PositionOf(tp).Value < 0));
        var limit = _firstUnpositioned.Count > 0 ? FairResumeLimitUnpositioned : FairResumeLimit;
        _resumeLaterBy = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
    }

    private bool Resumable(TopicPartition tp) =>
        _pipelines.ContainsKey(tp.Partition.Value) && !_resumeAt.ContainsKey(tp.Partition.Value) && !_blocked.Contains(tp.Partition.Value);

    /// <summary>Whether the partition may have records to fetch, by librdkafka's last-known high watermark (cached, no request).</summary>
    private bool MayHaveRecords(TopicPartition tp)
    {
        var high = _consumer.GetWatermarkOffsets(tp).High;
        var position = PositionOf(tp);
        return high.Value < 0 || position.Value < 0 || position.Value < high.Value;
    }

    /// <summary>Where the partition's next fetch starts: a rewind's target, else the consumer's position (negative when none).</summary>
    private Offset PositionOf(TopicPartition tp) =>
        _rewoundTo.TryGetValue(tp.Partition.Value, out var rewound) ? new Offset(rewound) : _consumer.Position(tp);

    private void ServeSinkBackpressure()
    {
        while (_committer.TryTakeRewind(out var partition, out var delay)) Rewind(partition, delay);
        if (_resumeAt.Count > 0) ResumeDuePartitions();
    }

    /// <summary>Resumes the partitions whose sink backpressure pause is over (a method of its own: the lambda's closure would otherwise be made on every poll).</summary>
    private void ResumeDuePartitions()
    {
        var now = DateTime.UtcNow;
        foreach (var (partition, at) in _resumeAt.Where(r => r.Value <= now).ToArray())
        {
            _resumeAt.Remove(partition);
            // A plain resume: the rewind's seek set where fetching restarts, and the consumer's position still names
            // the record consumed last before the rewind, so seeking "to the position" would skip the rewound work.
            if (!_pausedInKafka && !_blocked.Contains(partition) && _pipelines.ContainsKey(partition))
                _consumer.Resume([new TopicPartition(_config.Kafka.SourceTopic, partition)]);
            LogSinkPauseOver(partition);
        }
    }

    /// <summary>
    /// A partition whose dead letter the DLQ refuses stops taking messages (its offsets cannot move past that record
    /// anyway) until the write succeeds; the others go on.
    /// </summary>
    private void ServeBlockedPartitions()
    {
        var blocked = _delivery.BlockedPartitions;
        if (blocked.Count == 0 && _blocked.Count == 0) return;
        var topic = _config.Kafka.SourceTopic;
        foreach (var ((_, partition), _) in blocked)
        {
            if (!_pipelines.ContainsKey(partition) || !_blocked.Add(partition)) continue;
            _consumer.Pause([new TopicPartition(topic, partition)]);
        }
        foreach (var partition in _blocked.Where(p => !blocked.ContainsKey((topic, p))).ToArray())
        {
            _blocked.Remove(partition);
            if (!_pausedInKafka && !_resumeAt.ContainsKey(partition) && _pipelines.ContainsKey(partition))
                ResumeAtPosition([new TopicPartition(topic, partition)]);
        }
    }

    /// <summary>
    /// Resumes and seeks each partition to its position: librdkafka drops what it prefetched on a pause, and a plain
    /// resume waits about half a second (2.16) before it fetches again, while a seek fetches at once.
    /// </summary>
    private void ResumeAtPosition(List<TopicPartition> partitions)
    {
        _consumer.Resume(partitions);
        foreach (var tp in partitions)
        {
            var position = PositionOf(tp);
            if (position.Value >= 0) _consumer.Seek(new TopicPartitionOffset(tp, position));
        }
    }

    /// <summary>
    /// Pauses the partition, abandons its uncommitted work, and seeks back to its committed offset so that work is
    /// redone once the pause is over. Nothing uncommitted is lost: it is consumed again.
    /// </summary>
    private void Rewind(int partition, TimeSpan delay)
    {
        if (!_pipelines.TryGetValue(partition, out var abandoned)) return;
        var tp = new TopicPartition(abandoned.Topic, partition);
        _consumer.Pause([tp]);
        abandoned.Abort();
        _delivery.Discard(abandoned.Topic, partition);
        var restart = abandoned.RestartOffset;
        var fresh = NewPipeline(abandoned.Topic, partition);
        fresh.CommittedAtAssign = abandoned.Progress.Committed;
        _pipelines[partition] = fresh;
        fresh.Start();
        if (restart >= 0)
        {
            _consumer.Seek(new TopicPartitionOffset(tp, restart));
            _rewoundTo[partition] = restart;
        }
        _resumeAt[partition] = DateTime.UtcNow + delay;
        LogRewound(abandoned.Topic, partition, restart, delay.TotalSeconds);
    }

    private PartitionPipeline NewPipeline(string topic, int partition) =>
        new(topic, partition, _handler, _executor, _delivery, _settings, _load, _metrics, _loggers.CreateLogger("Drakkar.Pipeline.PartitionPipeline"));

    private void OnAssigned(List<TopicPartition> partitions)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        _metrics.RebalanceEvents.Increment("assign");
        _metrics.RebalancePartitions.WithLabels("assign").Add(partitions.Count);
        if (_metrics.Events.IsOn && partitions.Count > 0) _metrics.Events.Rebalanced("assign", [.. partitions.Select(p => p.Partition.Value)]);
        foreach (var tp in partitions)
        {
            var pipeline = NewPipeline(tp.Topic, tp.Partition.Value);
            _pipelines[tp.Partition.Value] = pipeline;
            pipeline.Start();
        }
        _metrics.AssignedPartitions.Set(_pipelines.Count);
        if (_metrics.Events.IsOn) ShowCommittedOffsets(partitions);
        // A cooperative rebalance that moves nothing here still calls this, with no partition.
        LogAssigned(partitions.Count == 0 ? "none new" : string.Join(", ", partitions.Select(p => p.Partition.Value)));
        // Newly assigned partitions must respect a pause already in force.
        if (_pausedInKafka || _stopping) _consumer.Pause(partitions);
        RunHook(static (handler, ids) => handler.OnAssign(ids), [.. partitions.Select(p => new PartitionId(p.Topic, p.Partition.Value))], "on_assign");
        _metrics.RebalanceDuration.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, "assign");
    }

    /// <summary>
    /// With the debug UI on: the group's committed offsets of newly assigned partitions (one request), so that a
    /// partition with no new message since does not show -1 as its committed offset and its whole backlog as lag.
    /// </summary>
    private void ShowCommittedOffsets(List<TopicPartition> partitions)
    {
        if (partitions.Count == 0) return;
        try
        {
            foreach (var committed in _consumer.Committed(partitions, CommittedFetchTimeout))
            {
                if (committed.Offset.Value >= 0 && _pipelines.TryGetValue(committed.Partition.Value, out var pipeline))
                    pipeline.CommittedAtAssign = committed.Offset.Value;
            }
        }
        catch (KafkaException e)
        {
            // Shown as unknown (-1) until this worker commits: the UI is not worth holding the assignment up for.
            LogCommittedUnknown(e.Error.Reason);
        }
    }

    private static readonly TimeSpan CommittedFetchTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// What a partition let go (revoked or lost) leaves behind here: a later assignment of it must not find its old
    /// sink pause, DLQ block, rewind or empty mark.
    /// </summary>
    private void ForgetPauses(int partition)
    {
        _resumeAt.Remove(partition);
        _blocked.Remove(partition);
        _rewoundTo.Remove(partition);
        _emptyUnpositioned.Remove(partition);
    }

    /// <summary>
    /// Lifts this worker's pause from partitions it lets go: librdkafka keeps an application's pause on a partition
    /// across a revoke and a later assignment (it cannot be lifted in the assignment's callback, before the partitions
    /// are assigned), so a partition let go while paused (backpressure, a sink's pause, a dead letter, a resume still
    /// deferred) could come back paused, and nothing here would resume it. A lost partition may no longer be assigned
    /// by then; the refusal is logged at debug level.
    /// </summary>
    private void LetGoUnpaused(List<TopicPartitionOffset> partitions)
    {
        if (partitions.Count == 0) return;
        try
        {
            _consumer.Resume(partitions.Select(p => p.TopicPartition));
        }
        catch (KafkaException e)
        {
            LogResumeAtRevokeFailed(e.Error.Reason);
        }
    }

    /// <summary>Drains each revoked partition, commits its watermark, then lets it go (SPEC O7).</summary>
    private void OnRevoked(List<TopicPartitionOffset> partitions)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        _metrics.RebalanceEvents.Increment("revoke");
        _metrics.RebalancePartitions.WithLabels("revoke").Add(partitions.Count);
        if (_metrics.Events.IsOn && partitions.Count > 0) _metrics.Events.Rebalanced("revoke", [.. partitions.Select(p => p.Partition.Value)]);
        var revoked = partitions.Select(p => _pipelines.TryGetValue(p.Partition.Value, out var pipeline) ? pipeline : null)
            .OfType<PartitionPipeline>().ToArray();
        if (revoked.Length > 0)
        {
            LogRevoking(string.Join(", ", revoked.Select(p => p.Partition)));
            var timeout = TimeSpan.FromSeconds(_config.Executor.DrainTimeoutSeconds);
            Task.WhenAll(revoked.Select(p => p.DrainAsync(timeout))).GetAwaiter().GetResult();
            _committer.CommitAsync(revoked, final: true).GetAwaiter().GetResult();
            CountHandover(revoked, "revoked");
        }
        foreach (var p in partitions)
        {
            _pipelines.TryRemove(p.Partition.Value, out _);
            ForgetPauses(p.Partition.Value);
            _delivery.Discard(p.Topic, p.Partition.Value);
        }
        LetGoUnpaused(partitions);
        ForgetSeries(partitions);
        _metrics.AssignedPartitions.Set(_pipelines.Count);
        RunHook(static (handler, ids) => handler.OnRevoke(ids), [.. partitions.Select(p => new PartitionId(p.Topic, p.Partition.Value))], "on_revoke");
        _metrics.RebalanceDuration.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, "revoke");
    }

    /// <summary>
    /// Partitions that went elsewhere leave the per-partition gauges (they kept their last values). The queue's series
    /// goes now (its old pipeline keeps a detached cell; a new one for the partition makes a new series), the lag's at
    /// the next commit round.
    /// </summary>
    private void ForgetSeries(List<TopicPartitionOffset> partitions)
    {
        foreach (var p in partitions) _metrics.PartitionQueueSize.Remove(p.Partition.Value.ToString(CultureInfo.InvariantCulture));
        _committer.Forget(partitions.Select(p => p.Partition.Value));
    }

    /// <summary>
    /// After the final commit of a handover: counts and reports the messages finished here that the commit does not
    /// cover, which the next owner processes again (duplicates, as far as this worker can tell).
    /// </summary>
    private void CountHandover(IEnumerable<PartitionPipeline> pipelines, string how)
    {
        foreach (var pipeline in pipelines)
        {
            var redo = pipeline.FinishedUncommitted;
            if (redo <= 0) continue;
            _metrics.HandoverRedo.WithLabels(pipeline.Partition.ToString(CultureInfo.InvariantCulture)).Add(redo);
            LogHandoverRedo(pipeline.Topic, pipeline.Partition, how, redo);
        }
    }

    /// <summary>Partitions lost without a clean revoke: their work is abandoned uncommitted (someone else owns them now).</summary>
    private void OnLost(List<TopicPartitionOffset> partitions)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        _metrics.RebalanceEvents.Increment("lost");
        _metrics.RebalancePartitions.WithLabels("lost").Add(partitions.Count);
        if (_metrics.Events.IsOn && partitions.Count > 0) _metrics.Events.Rebalanced("lost", [.. partitions.Select(p => p.Partition.Value)]);
        var lost = new List<PartitionPipeline>();
        foreach (var p in partitions)
        {
            ForgetPauses(p.Partition.Value);
            if (!_pipelines.TryRemove(p.Partition.Value, out var pipeline)) continue;
            pipeline.Abort();
            // What batching sinks or the exactly-once transaction hold for it belongs to the new owner's redo.
            _delivery.Discard(p.Topic, p.Partition.Value);
            lost.Add(pipeline);
        }
        LetGoUnpaused(partitions);
        CountHandover(lost, "lost");
        ForgetSeries(partitions);
        _metrics.AssignedPartitions.Set(_pipelines.Count);
        LogLost(string.Join(", ", partitions.Select(p => p.Partition.Value)));
        RunHook(static (handler, ids) => handler.OnRevoke(ids), [.. partitions.Select(p => new PartitionId(p.Topic, p.Partition.Value))], "on_revoke");
        _metrics.RebalanceDuration.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, "lost");
    }

    /// <summary>
    /// Counts a client error and logs it, each error code at most once per <see cref="LogThrottle.Interval"/> (an
    /// unreachable broker is reported every few tens of milliseconds: 167 lines in 8 s); the counter has every one, and
    /// the next line of that code says how many were not logged. A fatal error is always logged. Poll thread only.
    /// </summary>
    private void OnError(Error error)
    {
        _metrics.ConsumerErrors.Increment();
        ref var throttle = ref CollectionsMarshal.GetValueRefOrAddDefault(_kafkaErrorLogs, error.Code, out _);
        if (throttle.Allow(out var notLogged, always: error.IsFatal)) LogKafkaError(error.Code.ToString(), error.Reason, error.IsFatal, notLogged);
    }

    /// <summary>
    /// Runs a rebalance hook on the poll thread; whatever it throws is logged and the rebalance proceeds. The hook is
    /// called inside the try: one written without <c>async</c> throws from the call itself, before any task exists,
    /// and that escaped into the poll loop and stopped consumption.
    /// </summary>
    private void RunHook(Func<DrakkarHandlerBase, IReadOnlyList<PartitionId>, ValueTask> hook, IReadOnlyList<PartitionId> partitions, string name)
    {
        Volatile.Write(ref _hookRunning, name == "on_revoke" ? "OnRevoke" : "OnAssign");
        try
        {
            hook(_handler, partitions).AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            LogHookFailed(e, name);
        }
        finally
        {
            Volatile.Write(ref _hookRunning, null);
        }
    }

    // The rebalance hook running now (OnAssign, OnRevoke), or null.
    private string? _hookRunning;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink backpressure: {Topic}[{Partition}] rewound to offset {Offset}, paused for {Seconds}s")]
    private partial void LogRewound(string topic, int partition, long offset, double seconds);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The group's committed offsets of the assigned partitions could not be read for the debug UI ({Reason}); it shows them once this worker commits")]
    private partial void LogCommittedUnknown(string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Partitions let go could not be unpaused ({Reason}); a later assignment of one may need a backpressure cycle to resume it")]
    private partial void LogResumeAtRevokeFailed(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sink backpressure over: partition {Partition} resumes")]
    private partial void LogSinkPauseOver(int partition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Undecodable message {Topic}[{Partition}]@{Offset} ({Bytes} bytes): {Error}; it reaches Arrange with a null payload ({NotLogged} more since the last such line, see drakkar_message_decode_errors_total)")]
    private partial void LogUndecodable(string topic, int partition, long offset, int bytes, string error, int notLogged);

    [LoggerMessage(Level = LogLevel.Information, Message = "Subscribed to {Topic} as group {Group} on {Brokers}")]
    private partial void LogSubscribed(string topic, string group, string brokers);

    [LoggerMessage(Level = LogLevel.Information, Message = "Partitions assigned: {Partitions}")]
    private partial void LogAssigned(string partitions);

    [LoggerMessage(Level = LogLevel.Information, Message = "Partitions revoked, draining: {Partitions}")]
    private partial void LogRevoking(string partitions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Handover of {Topic}[{Partition}] ({How}): {Messages} finished messages are not covered by a commit; the next owner processes them again")]
    private partial void LogHandoverRedo(string topic, int partition, string how, long messages);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Partitions lost, work abandoned uncommitted: {Partitions}")]
    private partial void LogLost(string partitions);

    // Either bound pauses: the executor load, or payloads in flight to the sinks (a sink holding an outage's payloads
    // counts as a full window), so the line gives both. Debug: a busy worker pauses and resumes several times a
    // second by design (the gauge drakkar_backpressure_active shows it).
    [LoggerMessage(Level = LogLevel.Debug, Message = "Backpressure: pausing consumption at load {Load} (high {High}), payloads in flight {InFlight} (max {MaxInFlight}), a sink holding payloads for an outage: {Holding}")]
    private partial void LogPaused(long load, long high, long inFlight, long maxInFlight, bool holding);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Backpressure released: resuming consumption at load {Load} (low {Low}), payloads in flight {InFlight} (resume at {ResumeInFlight})")]
    private partial void LogResumed(long load, long low, long inFlight, long resumeInFlight);

    // Without the exception: its stack is always this poll loop, and the reason says all there is (a topic not yet
    // created, a broker away); a stack trace made an expected condition look like a crash.
    [LoggerMessage(Level = LogLevel.Warning, Message = "Consume failed: {Reason} ({Code})")]
    private partial void LogConsumeFailed(string reason, ErrorCode code);

    [LoggerMessage(Level = LogLevel.Error, Message = "Dispatching {Partition}@{Offset} failed; the record goes to the DLQ")]
    private partial void LogDispatchFailed(Exception error, int partition, long offset);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The poll loop stopped unexpectedly: this worker consumes nothing more, so it stops (exit 1) to be restarted; what it finished and did not commit is redone")]
    private partial void LogPollLoopFailed(Exception error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Kafka error {Code}: {Reason} (fatal: {Fatal}; {NotLogged} more of this code since the last such line, see drakkar_consumer_errors_total)")]
    private partial void LogKafkaError(string code, string reason, bool fatal, int notLogged);

    [LoggerMessage(Level = LogLevel.Debug, Message = "librdkafka {Level} {Facility}: {Text}")]
    private partial void LogLibrdkafka(string level, string facility, string text);

    [LoggerMessage(Level = LogLevel.Error, Message = "Hook {Hook} failed")]
    private partial void LogHookFailed(Exception error, string hook);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stopping: {Step} did not finish within the drain bound; going on without it")]
    private partial void LogStopStepOverran(string step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closing the consumer failed")]
    private partial void LogCloseFailed(Exception error);
}

/// <summary>One assigned partition as the debug UI shows it (offsets are -1 when not known yet).</summary>
internal sealed record PartitionProgress(string Topic, int Partition, long Committed, long LastConsumed, long HighWatermark, int InFlight)
{
    /// <summary>Records on the broker not committed yet: the high watermark minus the committed offset (or minus the start when nothing was committed).</summary>
    public long Lag => HighWatermark < 0 ? Math.Max(0, LastConsumed + 1 - Math.Max(Committed, 0)) : Math.Max(0, HighWatermark - Math.Max(Committed, 0));
}
