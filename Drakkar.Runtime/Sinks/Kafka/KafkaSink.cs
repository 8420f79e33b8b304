using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Drakkar.Sinks.Kafka;

/// <summary>
/// Produces each payload to the configured topic (SPEC S8): value = compact JSON of the data, key as given, and
/// waits for every delivery report. Idempotent only with broker idempotence (<c>idempotent: true</c>), because
/// otherwise a retried batch duplicates records.
/// </summary>
public sealed class KafkaSink : ISink
{
    private readonly KafkaSinkConfig _config;
    private readonly string _brokers;
    private readonly ILogger _logger;
    private readonly SinkSecretMasker _masker;
    private IProducer<byte[]?, byte[]>? _producer;

    internal KafkaSink(string name, KafkaSinkConfig config, string defaultBrokers, ILogger logger, SinkSecretMasker masker)
    {
        if (string.IsNullOrWhiteSpace(config.Topic))
            throw new SinkConfigurationException($"sinks.kafka.{name}.topic is required.");
        Name = name;
        _config = config;
        _brokers = string.IsNullOrWhiteSpace(config.Brokers) ? defaultBrokers : config.Brokers;
        _logger = logger;
        _masker = masker;
        masker.AddCredentialsOf(_brokers);
    }

    public string Kind => "kafka";
    public string Name { get; }
    public bool IsIdempotent => _config.Idempotent;
    public bool IsConnected => _producer is not null;

    /// <summary>The topic records go to.</summary>
    public string Topic => _config.Topic;

    public ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = _brokers,
            Acks = Acks.All,
            EnableIdempotence = _config.Idempotent,
            // A delivery that cannot finish within this surfaces as a failure the breaker and DLQ can act on,
            // instead of librdkafka's five-minute default.
            MessageTimeoutMs = 30_000,
            // A sink call already hands over a whole batch, so waiting to accumulate more only adds latency.
            LingerMs = 0,
        };
        _producer = KafkaProducers.Build(config, _logger, _masker, $"kafka sink {Name}");
        return ValueTask.CompletedTask;
    }

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var producer = _producer ?? throw new SinkTransientException($"kafka sink '{Name}' is not connected");
        if (batch.Count == 0) return;
        // Hand librdkafka the whole batch before waiting, so it packs the records into few requests; one tally per
        // batch collects the delivery reports instead of a task per record.
        var tally = new DeliveryTally(batch.Count);
        for (var i = 0; i < batch.Count; i++)
        {
            try
            {
                producer.Produce(_config.Topic, Record((KafkaPayload)batch.Payloads[i]), tally.Report);
            }
            catch (ProduceException<byte[]?, byte[]> e)
            {
                tally.NotSent(batch.Count - i, e.Error);
                break;
            }
        }
        var (failed, first) = await tally.Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (failed == 0) return;
        var text = failed == 1 && batch.Count == 1
            ? $"record to {_config.Topic} failed: {first!.Reason} ({first.Code})"
            : $"{failed} of {batch.Count} records to {_config.Topic} failed: {first!.Reason} ({first.Code})";
        throw new KafkaSinkException(text, first);
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        if (_producer is { } producer)
        {
            _producer = null;
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

    private static Message<byte[]?, byte[]> Record(KafkaPayload payload) =>
        new() { Key = payload.Key, Value = payload.Data.ToJsonBytes() };
}

/// <summary>Counts one batch's delivery reports (they arrive on librdkafka's thread) and completes when all are in.</summary>
internal sealed class DeliveryTally(int count)
{
    private readonly TaskCompletionSource<(int Failed, Error? First)> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _remaining = count;
    private int _failed;
    private Error? _first;

    public Task<(int Failed, Error? First)> Completion => _completion.Task;

    public void Report(DeliveryReport<byte[]?, byte[]> report)
    {
        if (report.Error.IsError) Fail(1, report.Error);
        Done(1);
    }

    /// <summary>Records that were never handed to librdkafka (it refused the produce call).</summary>
    public void NotSent(int records, Error error)
    {
        Fail(records, error);
        Done(records);
    }

    private void Fail(int records, Error error)
    {
        Interlocked.Add(ref _failed, records);
        Interlocked.CompareExchange(ref _first, error, null);
    }

    private void Done(int records)
    {
        if (Interlocked.Add(ref _remaining, -records) == 0) _completion.TrySetResult((Volatile.Read(ref _failed), Volatile.Read(ref _first)));
    }
}

/// <summary>Records were not acknowledged; <see cref="Error"/> is librdkafka's reason (transient when it is a broker or network condition).</summary>
public sealed class KafkaSinkException(string message, Error error) : KafkaException(error)
{
    public override string Message { get; } = message;
}
