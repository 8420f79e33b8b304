using System.Diagnostics;
using Confluent.Kafka;
using Drakkar.Kafka;
using Drakkar.Observability.Tracing;
using Microsoft.Extensions.Logging;

namespace Drakkar.Sinks.Kafka;

/// <summary>
/// Produces each payload to the configured topic (SPEC S8): value = compact JSON of the data, key as given, and
/// waits for every delivery report. Idempotent only with broker idempotence (<c>idempotent: true</c>), because
/// otherwise a retried batch duplicates records. Under <c>kafka.exactly_once</c> it produces nothing itself: it stages
/// each hook call's records in the worker's <see cref="KafkaTransaction"/>, which writes them with the source offsets
/// at the next commit (SPEC O12).
/// </summary>
internal sealed class KafkaSink : ISink
{
    private readonly KafkaSinkConfig _config;
    private readonly string _brokers;
    private readonly KafkaConfig _kafka;
    private readonly ILogger _logger;
    private readonly SinkSecretMasker _masker;
    private IProducer<byte[]?, byte[]>? _producer;
    private KafkaTransaction? _transaction;

    // kafka: the worker's kafka section, for the brokers when the sink names none and for the connection security.
    internal KafkaSink(string name, KafkaSinkConfig config, KafkaConfig kafka, ILogger logger, SinkSecretMasker masker)
    {
        if (string.IsNullOrWhiteSpace(config.Topic))
            throw new SinkConfigurationException($"sinks.kafka.{name}.topic is required.");
        Name = name;
        _config = config;
        _brokers = string.IsNullOrWhiteSpace(config.Brokers) ? kafka.Brokers : config.Brokers;
        _kafka = kafka;
        _logger = logger;
        _masker = masker;
        masker.AddCredentialsOf(_brokers);
    }

    public string Kind => "kafka";
    public string Name { get; }
    public bool IsIdempotent => _config.Idempotent;
    public bool IsConnected => _producer is not null || _transaction is { IsConnected: true };

    /// <summary>The topic records go to.</summary>
    public string Topic => _config.Topic;

    /// <summary>Exactly-once: records are staged in <paramref name="transaction"/> (connected and closed by its owner) instead of produced.</summary>
    internal void StageInto(KafkaTransaction transaction) => _transaction = transaction;

    public ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        if (_transaction is not null) return ValueTask.CompletedTask;
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
            // Only a report's error is read (DeliveryTally): Confluent then copies no key, value or headers back per record.
            DeliveryReportFields = "status",
        };
        _producer = KafkaProducers.Build(KafkaSecurity.Apply(config, _kafka, _masker), _logger, _masker, $"kafka sink {Name}");
        return ValueTask.CompletedTask;
    }

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        if (_transaction is { } transaction)
        {
            Stage(batch, transaction);
            return;
        }
        var producer = _producer ?? throw new SinkTransientException($"kafka sink '{Name}' is not connected");
        if (batch.Count == 0) return;
        // Hand librdkafka the whole batch before waiting, so it packs the records into few requests; one tally per
        // batch collects the delivery reports. Each record's outcome is its own: a payload that cannot be serialized
        // or a record the broker refuses fails only that payload (SinkBatch.Fail).
        var tally = new DeliveryTally(batch);
        for (var i = 0; i < batch.Count; i++)
        {
            if (RecordOf(batch, i, out var unserializable) is not { } record)
            {
                tally.Unserializable(i, unserializable!);
                continue;
            }
            Produced produced;
            // A full local queue (librdkafka's queue.buffering.max.messages) drains as reports come in: wait, then again.
            while ((produced = Produce(producer, record, tally, i)) == Produced.QueueFull)
                await Task.Delay(QueueFullWait, cancellationToken).ConfigureAwait(false);
            if (produced == Produced.ProducerFailed) break;
        }
        var (failed, first) = await tally.Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (first is null && !tally.AnyUnserializable) return;
        // Every record refused by the broker: a failure of the whole call (transient when it is a broker or network
        // condition), so the retry contract and the breaker see it as such.
        if (first is not null && failed == batch.Count)
        {
            var text = failed == 1
                ? DeliveryTally.RecordFailure(_config.Topic, first, batch, 0)
                : $"{failed} of {batch.Count} records to {_config.Topic} failed: {first.Reason} ({first.Code})";
            throw new KafkaSinkException(text, first);
        }
        tally.FailRefused(batch, _config.Topic);
    }

    private enum Produced
    {
        // Handed over, or refused alone: go on with the next record.
        Next,
        QueueFull,
        ProducerFailed,
    }

    private static readonly TimeSpan QueueFullWait = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Hands record <paramref name="index"/> to librdkafka. A record it refuses for itself (larger than
    /// <c>message.max.bytes</c>, say) fails alone, and the batch's next records are still produced: failing them all
    /// with its error sent valid records of other hook calls to the DLQ as "too large". When the producer itself cannot
    /// take records any more (a fatal error), the rest of the batch is failed unsent.
    /// </summary>
    private Produced Produce(IProducer<byte[]?, byte[]> producer, Message<byte[]?, byte[]> record, DeliveryTally tally, int index)
    {
        try
        {
            producer.Produce(_config.Topic, record, tally.ReportFor(index));
            return Produced.Next;
        }
        catch (ProduceException<byte[]?, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
        {
            return Produced.QueueFull;
        }
        catch (ProduceException<byte[]?, byte[]> e) when (!e.Error.IsFatal)
        {
            tally.NotSent(index, index + 1, e.Error);
            return Produced.Next;
        }
        catch (ProduceException<byte[]?, byte[]> e)
        {
            tally.NotSent(index, tally.Count, e.Error);
            return Produced.ProducerFailed;
        }
    }

    /// <summary>
    /// Stages each hook call's records whole: a group with a payload that cannot be serialized, or whose record the
    /// transactional producer would refuse as too large, stages nothing (that payload fails, so the group takes the
    /// failure path: <c>OnDeliveryError</c>, the DLQ), so a retried group is never staged twice.
    /// </summary>
    private void Stage(SinkBatch batch, KafkaTransaction transaction)
    {
        var groups = batch.Groups ?? throw new InvalidOperationException("exactly-once staging needs the hook calls a batch came from");
        var index = 0;
        foreach (var group in groups)
        {
            var records = new Message<byte[]?, byte[]>[group.Count];
            var stageable = true;
            for (var i = 0; i < group.Count; i++, index++)
            {
                var record = RecordOf(batch, index, out var failure);
                if (record is not null && KafkaTransaction.TooLarge(record) is { } size)
                {
                    failure = new SinkDeliveryException($"payload {index + 1} of {batch.Count} ({batch.Payloads[index].Data.TypeName}) makes a " +
                        $"record of {size} bytes, over the {KafkaTransaction.MaxRecordBytes}-byte limit of the exactly-once producer");
                    record = null;
                }
                if (record is not null)
                {
                    records[i] = record;
                    continue;
                }
                batch.Fail(index, failure!);
                stageable = false;
            }
            if (!stageable) continue;
            var messages = group.Origin.Messages;
            var lastOffset = messages.Count == 0 ? -1 : messages.Max(m => m.Offset);
            transaction.Stage(group.Origin.Partition, lastOffset, _config.Topic, records, group.Abandoned);
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

    /// <summary>The record of payload <paramref name="index"/>, or null with the reason when its data cannot be written as JSON.</summary>
    private static Message<byte[]?, byte[]>? RecordOf(SinkBatch batch, int index, out SinkDeliveryException? unserializable)
    {
        unserializable = null;
        try
        {
            return Record((KafkaPayload)batch.Payloads[index], batch.TraceContextOf(index));
        }
        catch (Exception e) when (PayloadData.IsUnwritable(e))
        {
            unserializable = SinkDeliveryException.Unwritable(batch, index, "JSON", e);
            return null;
        }
    }

    /// <summary>The record of one payload; it names its delivery span as <c>traceparent</c> when the payload is traced.</summary>
    private static Message<byte[]?, byte[]> Record(KafkaPayload payload, ActivityContext trace) => new()
    {
        Key = payload.Key,
        Value = payload.Data.ToJsonBytes(),
        Headers = trace == default ? NoHeaders : new Headers { { PipelineTracing.TraceParentHeader, PipelineTracing.TraceParent(trace) } },
    };

    /// <summary>
    /// The headers of an untraced record. Given none, the client makes an empty set (and its list) per record; it only
    /// reads them, so one empty set serves every record.
    /// </summary>
    private static readonly Headers NoHeaders = [];
}

/// <summary>
/// Counts one batch's delivery reports (they arrive on librdkafka's thread), remembers which records failed and why,
/// and completes when all are in.
/// </summary>
internal sealed class DeliveryTally
{
    private readonly TaskCompletionSource<(int Failed, Error? First)> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Error?[] _errors;
    private int _remaining;
    private int _failed;
    private Error? _first;
    // Filled by the producing thread only, before the reports are awaited.
    private List<(int Index, Exception Error)>? _unserializable;

    public DeliveryTally(SinkBatch batch)
    {
        _errors = new Error?[batch.Count];
        _remaining = batch.Count;
    }

    public Task<(int Failed, Error? First)> Completion => _completion.Task;

    /// <summary>The records of the batch.</summary>
    public int Count => _errors.Length;

    /// <summary>True when some payload was never produced because it could not be serialized.</summary>
    public bool AnyUnserializable => _unserializable is not null;

    /// <summary>The delivery report handler of record <paramref name="index"/>.</summary>
    public Action<DeliveryReport<byte[]?, byte[]>> ReportFor(int index) => report =>
    {
        if (report.Error.IsError) Fail(index, 1, report.Error);
        Done(1);
    };

    /// <summary>Records <paramref name="from"/> up to (not including) <paramref name="count"/> were never handed to librdkafka (it refused the produce call).</summary>
    public void NotSent(int from, int count, Error error)
    {
        Fail(from, count - from, error);
        Done(count - from);
    }

    /// <summary>The payload at <paramref name="index"/> is failed on the batch at once and never produced.</summary>
    public void Unserializable(int index, Exception error)
    {
        _unserializable ??= [];
        _unserializable.Add((index, error));
        Done(1);
    }

    /// <summary>Marks every record that did not make it as failed on <paramref name="batch"/>.</summary>
    public void FailRefused(SinkBatch batch, string topic)
    {
        if (_unserializable is not null)
            foreach (var (index, error) in _unserializable) batch.Fail(index, error);
        for (var i = 0; i < _errors.Length; i++)
        {
            if (Volatile.Read(ref _errors[i]) is { } error)
                batch.Fail(i, new KafkaSinkException(RecordFailure(topic, error, batch, i), error));
        }
    }

    /// <summary>
    /// Why record <paramref name="index"/> failed; for a record too large, also how large it is and which limits apply
    /// (librdkafka's and the broker's words name neither).
    /// </summary>
    internal static string RecordFailure(string topic, Error error, SinkBatch batch, int index)
    {
        var text = $"record to {topic} failed: {error.Reason} ({error.Code})";
        if (error.Code != ErrorCode.MsgSizeTooLarge || index >= batch.Count) return text;
        int bytes;
        try
        {
            bytes = batch.Payloads[index].Data.ToJsonBytes().Length;
        }
        catch (Exception e) when (PayloadData.IsUnwritable(e))
        {
            return text;
        }
        return bytes >= ProducerMessageMaxBytes
            ? text + $"; its value is {bytes} bytes, over the topic's max.message.bytes on the broker (1 MiB by default) or the producer's " +
                "message.max.bytes (1,000,000): make the payload smaller, or raise both"
            // Under the producer's limit: over the topic's own, or refused with the batch it was packed in.
            : text + $"; its value is {bytes} bytes: over the topic's max.message.bytes, or the broker refused the whole batch of " +
                "records it was sent in (librdkafka packs up to 1,000,000 bytes per partition), larger than that limit; raise the " +
                "topic's max.message.bytes to 1,000,000 or more, or make the payload smaller";
    }

    /// <summary>librdkafka's <c>message.max.bytes</c>, which the sink's producer keeps.</summary>
    private const int ProducerMessageMaxBytes = 1_000_000;

    private void Fail(int from, int count, Error error)
    {
        for (var i = from; i < from + count; i++) Volatile.Write(ref _errors[i], error);
        Interlocked.Add(ref _failed, count);
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
