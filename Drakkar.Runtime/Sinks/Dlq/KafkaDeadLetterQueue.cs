using Confluent.Kafka;
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
/// The producer is built on the first write, not in <see cref="ConnectAsync"/>: a healthy worker may never write a
/// dead letter, and building a Confluent client at startup would delay readiness (the first client in a process
/// pays Confluent.Kafka's native binding).
/// </remarks>
internal sealed partial class KafkaDeadLetterQueue : IDeadLetterQueue
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private readonly string _brokers;
    private readonly int _messageTimeoutMs;
    private readonly MetricCell _sendFailures;
    private readonly ILogger _logger;
    private readonly SinkSecretMasker _masker;
    private readonly Func<TimeSpan, CancellationToken, Task> _delay;
    private readonly Lock _gate = new();
    private IProducer<byte[]?, byte[]>? _producer;

    // messageTimeoutMs: how long one write may take before it counts as failed and is retried.
    public KafkaDeadLetterQueue(string topic, string brokers, DrakkarMetrics metrics, ILogger logger, SinkSecretMasker masker,
        Func<TimeSpan, CancellationToken, Task>? delay = null, int messageTimeoutMs = 30_000)
    {
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
            _producer = KafkaProducers.Build(new ProducerConfig
            {
                BootstrapServers = _brokers,
                Acks = Acks.All,
                MessageTimeoutMs = _messageTimeoutMs,
            }, _logger, _masker, "dlq");
            LogProducerStarted(_logger, Destination, SinkSecretMasker.Url(_brokers));
            return _producer;
        }
    }

    public async ValueTask WriteAsync(DeadLetter letter, CancellationToken cancellationToken)
    {
        var producer = Producer();
        var message = new Message<byte[]?, byte[]>
        {
            Key = letter.RecordKey,
            Value = letter.ToJsonBytes(),
            Headers = KafkaProducers.Headers(letter.RecordHeaders),
            Timestamp = new Timestamp(letter.Timestamp),
        };
        var backoff = FirstBackoff;
        for (var failures = 1; ; failures++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                await producer.ProduceAsync(Destination, message, cancellationToken).ConfigureAwait(false);
                if (failures > 1) LogRecovered(_logger, Destination, failures - 1);
                return;
            }
            catch (ProduceException<byte[]?, byte[]> e)
            {
                _sendFailures.Increment();
                LogWriteFailed(_logger, Destination, letter.SinkKind, letter.SinkName, letter.Partition, failures,
                    _masker.Apply(e.Error.Reason), backoff.TotalSeconds);
            }
            catch (KafkaException e)
            {
                _sendFailures.Increment();
                LogWriteFailed(_logger, Destination, letter.SinkKind, letter.SinkName, letter.Partition, failures,
                    _masker.Apply(e.Error.Reason), backoff.TotalSeconds);
            }
            await _delay(backoff, cancellationToken).ConfigureAwait(false);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
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
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "DLQ ready: topic {Topic} on {Brokers} (its producer starts with the first dead letter)")]
    private static partial void LogConfigured(ILogger logger, string topic, string brokers);

    [LoggerMessage(Level = LogLevel.Information, Message = "DLQ producer started for topic {Topic} on {Brokers}")]
    private static partial void LogProducerStarted(ILogger logger, string topic, string brokers);

    [LoggerMessage(Level = LogLevel.Critical, Message = "DLQ write to {Topic} failed (sink {SinkKind}/{SinkName}, partition {Partition}, failure {Failures}): {Reason}; retrying in {BackoffSeconds}s, offsets stay uncommitted")]
    private static partial void LogWriteFailed(ILogger logger, string topic, string sinkKind, string sinkName, int partition, int failures, string reason, double backoffSeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "DLQ write to {Topic} succeeded after {Failures} failed attempts")]
    private static partial void LogRecovered(ILogger logger, string topic, int failures);
}
