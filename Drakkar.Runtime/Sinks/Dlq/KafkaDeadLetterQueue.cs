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

    public ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        Producer();
        LogConnected(_logger, Destination, SinkSecretMasker.Url(_brokers));
        return ValueTask.CompletedTask;
    }

    // Created on first use as well, so a dead letter is never refused because startup order went wrong.
    private IProducer<byte[]?, byte[]> Producer()
    {
        lock (_gate)
        {
            return _producer ??= KafkaProducers.Build(new ProducerConfig
            {
                BootstrapServers = _brokers,
                Acks = Acks.All,
                MessageTimeoutMs = _messageTimeoutMs,
            }, _logger, _masker, "dlq");
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

    [LoggerMessage(Level = LogLevel.Information, Message = "DLQ ready: topic {Topic} on {Brokers}")]
    private static partial void LogConnected(ILogger logger, string topic, string brokers);

    [LoggerMessage(Level = LogLevel.Critical, Message = "DLQ write to {Topic} failed (sink {SinkKind}/{SinkName}, partition {Partition}, failure {Failures}): {Reason}; retrying in {BackoffSeconds}s, offsets stay uncommitted")]
    private static partial void LogWriteFailed(ILogger logger, string topic, string sinkKind, string sinkName, int partition, int failures, string reason, double backoffSeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "DLQ write to {Topic} succeeded after {Failures} failed attempts")]
    private static partial void LogRecovered(ILogger logger, string topic, int failures);
}
