using Confluent.Kafka;
using Drakkar.Kafka;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks.Kafka;
using Microsoft.Extensions.Logging;

namespace Drakkar.Sinks.Dlq;

/// <summary>
/// The dead letter queue on a Kafka topic (SPEC S15). A failed write is retried with a capped backoff until it
/// succeeds or the worker shuts down: the delivery that produced the letter does not return meanwhile, so the
/// source offsets stay uncommitted and nothing is ever dropped silently.
/// </summary>
/// <remarks>
/// A record the broker will never take as it is (too large, or not authorized) is a permanent failure: a too-large
/// record is cut to half the size and tried again, down to a floor; what still cannot be written blocks its
/// source partition visibly (<see cref="BlockedPartitions"/>: the worker pauses that partition, <c>/readyz</c>
/// answers 503 naming it, a critical log and <c>drakkar_dlq_blocked_partitions</c>) while every other partition goes
/// on. The write keeps retrying slowly, so fixing the broker's limit or ACL unblocks it without a restart.
/// </remarks>
/// <remarks>
/// The producer is built on the first write, not in <see cref="ConnectAsync"/>: a healthy worker may never write a
/// dead letter, and building a Confluent client at startup would delay readiness (the first client in a process
/// pays Confluent.Kafka's native binding).
/// </remarks>
internal sealed partial class KafkaDeadLetterQueue : IDeadLetterQueue
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan BlockedBackoff = TimeSpan.FromSeconds(30);
    /// <summary>The smallest size a too-large record is cut down to before its partition counts as blocked.</summary>
    private const int MinRecordBytes = 16 * 1024;

    private readonly string _brokers;
    private readonly KafkaConfig? _security;
    private readonly int _messageTimeoutMs;
    private readonly MetricCell _sendFailures;
    private readonly ILogger _logger;
    private readonly SinkSecretMasker _masker;
    private readonly Func<TimeSpan, CancellationToken, Task> _delay;
    private readonly Lock _gate = new();
    private readonly int _maxRecordBytes;
    private readonly CancellationTokenSource _closing = new();
    // Copy-on-write: the poll thread reads this on every iteration, so reading must not lock; changes are rare.
    private volatile IReadOnlyDictionary<(string Topic, int Partition), string> _blocked = new Dictionary<(string Topic, int Partition), string>();
    private readonly MetricCell _blockedGauge;
    private readonly DrakkarMetrics _metrics;
    private IProducer<byte[]?, byte[]>? _producer;
    private int _activeWrites;

    // messageTimeoutMs: how long one write may take before it counts as failed and is retried.
    // maxRecordBytes: dlq.max_message_bytes, the size records are cut to.
    // security: the kafka section whose security_protocol, sasl_* and ssl_* keys the producer connects with.
    public KafkaDeadLetterQueue(string topic, string brokers, DrakkarMetrics metrics, ILogger logger, SinkSecretMasker masker,
        Func<TimeSpan, CancellationToken, Task>? delay = null, int messageTimeoutMs = 30_000, int maxRecordBytes = DeadLetter.DefaultMaxBytes,
        KafkaConfig? security = null)
    {
        _security = security;
        _maxRecordBytes = maxRecordBytes;
        _blockedGauge = metrics.DlqBlockedPartitions.WithLabels();
        _metrics = metrics;
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentException.ThrowIfNullOrEmpty(brokers);
        Destination = topic;
        _brokers = brokers;
        _messageTimeoutMs = messageTimeoutMs;
        _sendFailures = metrics.DlqSendFailures.WithLabels();
        _logger = logger;
        _masker = masker;
        _delay = delay ?? Task.Delay;
    }

    /// <summary>The topic: <c>dlq.topic</c>, or <c>{source_topic}_dlq</c> when that is empty.</summary>
    public static string TopicFor(DlqConfig config, string sourceTopic) =>
        string.IsNullOrWhiteSpace(config.Topic) ? $"{sourceTopic}_dlq" : config.Topic;

    /// <summary>The brokers: <c>dlq.brokers</c>, or <c>kafka.brokers</c> when that is empty.</summary>
    public static string BrokersFor(DlqConfig config, KafkaConfig kafka) =>
        string.IsNullOrWhiteSpace(config.Brokers) ? kafka.Brokers : config.Brokers;

    public string Destination { get; }

    /// <summary>Whether the producer exists: from the first write until <see cref="CloseAsync"/>.</summary>
    internal bool HasProducer
    {
        get
        {
            lock (_gate) return _producer is not null;
        }
    }

    // Builds nothing: the producer is created by the first write (see the remarks above).
    public ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        LogConfigured(_logger, Destination, SinkSecretMasker.Url(_brokers));
        return ValueTask.CompletedTask;
    }

    private IProducer<byte[]?, byte[]> Producer()
    {
        lock (_gate)
        {
            if (_producer is not null) return _producer;
            var config = new ProducerConfig
            {
                BootstrapServers = _brokers,
                Acks = Acks.All,
                MessageTimeoutMs = _messageTimeoutMs,
                // Room for the record (cut to dlq.max_message_bytes) plus its key, headers and framing.
                MessageMaxBytes = _maxRecordBytes + 64 * 1024,
            };
            if (_security is not null) KafkaSecurity.Apply(config, _security, _masker);
            _producer = KafkaProducers.Build(config, _logger, _masker, "dlq");
            LogProducerStarted(_logger, Destination, SinkSecretMasker.Url(_brokers));
            return _producer;
        }
    }

    /// <summary>Source partitions whose dead letter cannot be written (see the remarks), with the reason.</summary>
    public IReadOnlyDictionary<(string Topic, int Partition), string> BlockedPartitions => _blocked;

    /// <summary>Adds or removes a blocked partition (a rare event); returns whether the set changed.</summary>
    private bool SetBlocked((string Topic, int Partition) source, string? reason)
    {
        lock (_gate)
        {
            var next = new Dictionary<(string Topic, int Partition), string>(_blocked);
            var changed = reason is null ? next.Remove(source) : next.TryAdd(source, reason);
            if (!changed) return false;
            _blocked = next;
            _blockedGauge.Set(next.Count);
            return true;
        }
    }

    public async ValueTask WriteAsync(DeadLetter letter, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _activeWrites);
        try
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
            await WriteUntilStoredAsync(letter, stop.Token).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _activeWrites);
        }
    }

    private async Task WriteUntilStoredAsync(DeadLetter letter, CancellationToken cancellationToken)
    {
        var producer = Producer();
        var limit = _maxRecordBytes;
        var message = Record(letter, limit);
        var source = (letter.SourceTopic, letter.Partition);
        var backoff = FirstBackoff;
        try
        {
            for (var failures = 1; ; failures++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Error error;
                try
                {
                    await producer.ProduceAsync(Destination, message, cancellationToken).ConfigureAwait(false);
                    if (failures > 1) LogRecovered(_logger, Destination, failures - 1);
                    _metrics.Events.DeadLettered(letter);
                    return;
                }
                catch (ProduceException<byte[]?, byte[]> e)
                {
                    error = e.Error;
                }
                catch (KafkaException e)
                {
                    error = e.Error;
                }
                _sendFailures.Increment();
                if (error.Code is (ErrorCode.MsgSizeTooLarge or ErrorCode.RecordListTooLarge) && limit > MinRecordBytes)
                {
                    limit = Math.Max(MinRecordBytes, limit / 2);
                    message = Record(letter, limit);
                    LogShrunk(_logger, Destination, letter.SourceTopic, letter.Partition, _masker.Apply(error.Reason), limit);
                    continue;
                }
                if (IsPermanent(error.Code))
                {
                    var reason = $"the DLQ {Destination} refuses the record of {letter.SourceTopic}[{letter.Partition}] offsets " +
                        $"{string.Join(",", letter.Messages.Select(m => m.Offset))}: {_masker.Apply(error.Reason)} ({error.Code})";
                    if (SetBlocked(source, reason)) LogBlocked(_logger, reason, BlockedBackoff.TotalSeconds);
                    backoff = BlockedBackoff;
                }
                else
                {
                    LogWriteFailed(_logger, Destination, letter.SinkKind, letter.SinkName, letter.Partition, failures,
                        _masker.Apply(error.Reason), backoff.TotalSeconds);
                }
                await _delay(backoff, cancellationToken).ConfigureAwait(false);
                if (backoff < BlockedBackoff) backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
        finally
        {
            SetBlocked(source, null);
        }
    }

    /// <summary>Errors that retrying the same record cannot fix: its size, or the producer's rights on the topic.</summary>
    private static bool IsPermanent(ErrorCode code) => code is ErrorCode.MsgSizeTooLarge
        or ErrorCode.RecordListTooLarge or ErrorCode.TopicAuthorizationFailed or ErrorCode.ClusterAuthorizationFailed
        or ErrorCode.TopicException or ErrorCode.InvalidRecord or ErrorCode.Local_InvalidArg;

    private static Message<byte[]?, byte[]> Record(DeadLetter letter, int maxBytes) => new()
    {
        Key = letter.RecordKey,
        Value = letter.ToJsonBytes(maxBytes),
        Headers = KafkaProducers.Headers(letter.RecordHeaders),
        Timestamp = new Timestamp(letter.Timestamp),
    };

    /// <summary>Stops writes still retrying (their offsets stay uncommitted), waits for them to let go, then closes the producer.</summary>
    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        await _closing.CancelAsync().ConfigureAwait(false);
        // librdkafka must not be called on a producer that is being destroyed: wait for every write to return.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (Volatile.Read(ref _activeWrites) > 0 && DateTime.UtcNow < deadline) await Task.Delay(10, CancellationToken.None).ConfigureAwait(false);
        IProducer<byte[]?, byte[]>? producer;
        lock (_gate)
        {
            producer = _producer;
            _producer = null;
        }
        if (producer is not null)
        {
            try
            {
                producer.Flush(TimeSpan.FromSeconds(10));
            }
            finally
            {
                producer.Dispose();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "Partition blocked: {Reason}. Its offsets stay uncommitted and it is paused; other partitions go on. Retrying every {Seconds}s (raise the broker's limit or fix the ACL to unblock it)")]
    private static partial void LogBlocked(ILogger logger, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "DLQ {Topic} refused a record of {SourceTopic}[{Partition}] as too large ({Reason}); trying it again cut to {Bytes} bytes")]
    private static partial void LogShrunk(ILogger logger, string topic, string sourceTopic, int partition, string reason, int bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "DLQ ready: topic {Topic} on {Brokers} (its producer starts with the first dead letter)")]
    private static partial void LogConfigured(ILogger logger, string topic, string brokers);

    [LoggerMessage(Level = LogLevel.Information, Message = "DLQ producer started for topic {Topic} on {Brokers}")]
    private static partial void LogProducerStarted(ILogger logger, string topic, string brokers);

    [LoggerMessage(Level = LogLevel.Critical, Message = "DLQ write to {Topic} failed (sink {SinkKind}/{SinkName}, partition {Partition}, failure {Failures}): {Reason}; retrying in {BackoffSeconds}s, offsets stay uncommitted")]
    private static partial void LogWriteFailed(ILogger logger, string topic, string sinkKind, string sinkName, int partition, int failures, string reason, double backoffSeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "DLQ write to {Topic} succeeded after {Failures} failed attempts")]
    private static partial void LogRecovered(ILogger logger, string topic, int failures);
}
