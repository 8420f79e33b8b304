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
        if (batch.Count == 1)
        {
            await producer.ProduceAsync(_config.Topic, Record((KafkaPayload)batch.Payloads[0]), cancellationToken).ConfigureAwait(false);
            return;
        }
        // Produce the whole batch before awaiting, so librdkafka packs it into few requests; then every report.
        var reports = new Task[batch.Count];
        for (var i = 0; i < reports.Length; i++)
            reports[i] = producer.ProduceAsync(_config.Topic, Record((KafkaPayload)batch.Payloads[i]), cancellationToken);
        try
        {
            await Task.WhenAll(reports).ConfigureAwait(false);
        }
        catch (ProduceException<byte[]?, byte[]>)
        {
            var failed = reports.Where(r => r.IsFaulted).Select(r => r.Exception!.GetBaseException()).ToArray();
            var first = failed[0];
            if (failed.Length == 1) throw;
            var text = $"{failed.Length} of {batch.Count} records to {_config.Topic} failed: {first.Message}";
            throw TransientErrors.IsTransient(first) ? new SinkTransientException(text, first) : new SinkDeliveryException(text, first);
        }
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
