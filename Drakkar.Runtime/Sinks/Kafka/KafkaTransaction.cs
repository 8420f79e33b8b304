using Confluent.Kafka;
using Drakkar.Kafka;
using Microsoft.Extensions.Logging;

namespace Drakkar.Sinks.Kafka;

/// <summary>
/// Exactly-once Kafka→Kafka (<c>kafka.exactly_once</c>, SPEC O12): one transactional producer per worker. The Kafka
/// sinks stage their records here, each tagged with the last source offset it answers; at every commit tick
/// <see cref="Commit"/> writes, in one transaction, the staged records of the messages the commit covers and the
/// source offsets themselves (<c>SendOffsetsToTransaction</c> with the consumer's group metadata, KIP-447). Records
/// of messages past a partition's watermark stay staged for a later transaction, so a committed transaction never
/// holds a record whose message will be processed again.
/// </summary>
/// <remarks>
/// The transactional id is <c>drakkar-{consumer_group}-{worker id}</c>. A restarted worker with the same id fences
/// the previous producer (<c>InitTransactions</c> bumps the epoch and aborts a transaction it left open); a zombie
/// that lost its partitions in a rebalance is refused by the group coordinator because its group generation is
/// stale (KIP-447), so one id per worker suffices and ids need not follow partitions.
/// </remarks>
internal sealed partial class KafkaTransaction : IDisposable
{
    /// <summary>How long one transaction step (begin, send offsets, commit, abort, init) may take.</summary>
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);

    private const int CommitAttempts = 3;

    /// <summary>The transactional producer's <c>message.max.bytes</c> (librdkafka's default, set explicitly so it is ours to check).</summary>
    public const int MaxRecordBytes = 1_000_000;

    /// <summary>Room for a record's framing in librdkafka's size check (length varints, attributes, timestamp and header counts).</summary>
    private const int RecordFraming = 512;
    private static readonly TimeSpan QueueFullWait = TimeSpan.FromMilliseconds(50);

    private readonly ProducerConfig _config;
    private readonly ILogger _logger;
    private readonly SinkSecretMasker _masker;
    private readonly Lock _gate = new();
    // Source partition → records staged for it, in staging order.
    private readonly Dictionary<int, List<StagedRecord>> _staged = [];
    private IProducer<byte[]?, byte[]>? _producer;

    public KafkaTransaction(string brokers, string transactionalId, ILogger logger, SinkSecretMasker masker)
    {
        TransactionalId = transactionalId;
        _logger = logger;
        _masker = masker;
        _config = new ProducerConfig
        {
            BootstrapServers = brokers,
            TransactionalId = transactionalId,
            EnableIdempotence = true,
            Acks = Acks.All,
            MessageMaxBytes = MaxRecordBytes,
            // Records are produced at commit time, all at once; Flush sends them without waiting for a batch to fill.
            LingerMs = 5,
        };
    }

    public string TransactionalId { get; }

    public bool IsConnected => Volatile.Read(ref _producer) is not null;

    /// <summary>The transactional id for a worker of <paramref name="group"/>.</summary>
    public static string IdFor(string group, string workerId) => $"drakkar-{group}-{workerId}";

    /// <summary>Creates the producer and registers the transactional id, fencing any earlier producer with the same id.</summary>
    public void Connect()
    {
        var producer = KafkaProducers.Build(_config, _logger, _masker, "kafka transaction");
        try
        {
            producer.InitTransactions(StepTimeout);
        }
        catch
        {
            producer.Dispose();
            throw;
        }
        Volatile.Write(ref _producer, producer);
    }

    /// <summary>
    /// Keeps one hook call's <paramref name="records"/> for the transaction that commits past source offset
    /// <paramref name="lastSourceOffset"/> of <paramref name="sourcePartition"/>. Records whose partition's work was
    /// abandoned (<paramref name="abandoned"/>) are not kept: checked under the same lock as <see cref="Discard"/>,
    /// so a late delivery from a rewound pipeline cannot slip in after its partition was discarded.
    /// </summary>
    public void Stage(int sourcePartition, long lastSourceOffset, string topic, IEnumerable<Message<byte[]?, byte[]>> records,
        CancellationToken abandoned)
    {
        lock (_gate)
        {
            if (abandoned.IsCancellationRequested) return;
            if (!_staged.TryGetValue(sourcePartition, out var staged)) _staged[sourcePartition] = staged = [];
            foreach (var record in records) staged.Add(new StagedRecord(lastSourceOffset, topic, record));
        }
    }

    /// <summary>
    /// The size of <paramref name="record"/> when the producer would refuse it as too large, else null. Checked when
    /// the record is staged: refused at commit time it would abort every transaction that carries it, forever.
    /// </summary>
    public static int? TooLarge(Message<byte[]?, byte[]> record)
    {
        var size = (record.Key?.Length ?? 0) + record.Value.Length + (record.Headers?.Sum(h => h.Key.Length + (h.GetValueBytes()?.Length ?? 0)) ?? 0);
        return size + RecordFraming > MaxRecordBytes ? size : null;
    }

    /// <summary>Forgets what is staged for a partition that is rewound or given up: its messages are processed again.</summary>
    public void Discard(int sourcePartition)
    {
        lock (_gate) _staged.Remove(sourcePartition);
    }

    /// <summary>
    /// Commits <paramref name="offsets"/> (one past the last finished message of each source partition) together with
    /// every staged record of the messages before them, in one transaction. Returns false when the transaction was
    /// aborted: nothing of it is visible to <c>read_committed</c> consumers, its records are dropped from staging, and
    /// the caller must rewind those partitions to their last committed offsets.
    /// </summary>
    public bool Commit(IReadOnlyList<TopicPartitionOffset> offsets, IConsumerGroupMetadata group)
    {
        var records = Take(offsets);
        if (Volatile.Read(ref _producer) is not { } producer)
        {
            // The producer could not be replaced after a failure: try again now; until it works nothing is committed.
            try
            {
                Connect();
                producer = Volatile.Read(ref _producer)!;
            }
            catch (KafkaException e)
            {
                LogReconnectFailed(e.Error.Code.ToString(), _masker.Apply(e.Error.Reason));
                return false;
            }
        }
        try
        {
            producer.BeginTransaction();
            var reports = new ReportCount();
            foreach (var staged in records) Produce(producer, staged, reports);
            if (producer.Flush(StepTimeout) > 0) throw new KafkaException(new Error(ErrorCode.Local_TimedOut, "the transaction's records were not acknowledged in time"));
            if (reports.FirstError is { } refused) throw new KafkaException(refused);
            producer.SendOffsetsToTransaction(offsets, group, StepTimeout);
            CommitTransaction(producer);
            return true;
        }
        catch (KafkaException e)
        {
            LogAborting(e.Error.Code.ToString(), _masker.Apply(e.Error.Reason), records.Count, Describe(offsets));
            Abort(producer, e);
            return false;
        }
    }

    /// <summary>librdkafka asks for a retriable commit to be called again; it is, a few times, before the transaction is abandoned.</summary>
    private static void CommitTransaction(IProducer<byte[]?, byte[]> producer)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                producer.CommitTransaction(StepTimeout);
                return;
            }
            catch (KafkaRetriableException) when (attempt < CommitAttempts)
            {
            }
        }
    }

    private static void Produce(IProducer<byte[]?, byte[]> producer, StagedRecord staged, ReportCount reports)
    {
        while (true)
        {
            try
            {
                producer.Produce(staged.Topic, staged.Record, reports.Report);
                return;
            }
            catch (ProduceException<byte[]?, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                // librdkafka's queue is full: let deliveries drain (the client's own thread serves the reports, and
                // records time out within transaction.timeout.ms when the broker is away), then hand it over again.
                Thread.Sleep(QueueFullWait);
            }
        }
    }

    /// <summary>
    /// Aborts the open transaction. A producer that cannot abort (fenced by a newer one with the same id, or in a fatal
    /// state) is replaced: the new one's <c>InitTransactions</c> aborts whatever the old one left open.
    /// </summary>
    private void Abort(IProducer<byte[]?, byte[]> producer, KafkaException cause)
    {
        if (!cause.Error.IsFatal)
        {
            try
            {
                producer.AbortTransaction(StepTimeout);
                return;
            }
            catch (KafkaException e)
            {
                LogAbortFailed(e.Error.Code.ToString(), _masker.Apply(e.Error.Reason));
            }
        }
        Volatile.Write(ref _producer, null);
        producer.Dispose();
        try
        {
            Connect();
        }
        catch (KafkaException e)
        {
            // The next commit tries again.
            LogReconnectFailed(e.Error.Code.ToString(), _masker.Apply(e.Error.Reason));
        }
    }

    /// <summary>Takes the staged records whose messages lie before the offsets being committed; the rest stay staged.</summary>
    private List<StagedRecord> Take(IReadOnlyList<TopicPartitionOffset> offsets)
    {
        var taken = new List<StagedRecord>();
        lock (_gate)
        {
            foreach (var offset in offsets)
            {
                if (!_staged.TryGetValue(offset.Partition.Value, out var records)) continue;
                var below = offset.Offset.Value;
                taken.AddRange(records.Where(r => r.LastSourceOffset < below));
                records.RemoveAll(r => r.LastSourceOffset < below);
            }
        }
        return taken;
    }

    private static string Describe(IReadOnlyList<TopicPartitionOffset> offsets) =>
        string.Join(", ", offsets.Select(o => $"{o.Partition.Value}@{o.Offset.Value}"));

    public void Dispose()
    {
        // A transaction is open only inside Commit, which the committer has finished before the sinks close.
        var producer = Interlocked.Exchange(ref _producer, null);
        producer?.Dispose();
    }

    private sealed record StagedRecord(long LastSourceOffset, string Topic, Message<byte[]?, byte[]> Record);

    /// <summary>The delivery reports of one transaction's records (they arrive on librdkafka's thread).</summary>
    private sealed class ReportCount
    {
        private Error? _first;

        public Error? FirstError => Volatile.Read(ref _first);

        public void Report(DeliveryReport<byte[]?, byte[]> report)
        {
            if (report.Error.IsError) Interlocked.CompareExchange(ref _first, report.Error, null);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Kafka transaction failed ({Code}: {Reason}); aborting it ({Records} records, offsets {Offsets}); those partitions are processed again from their committed offsets")]
    private partial void LogAborting(string code, string reason, int records, string offsets);

    [LoggerMessage(Level = LogLevel.Error, Message = "Aborting the Kafka transaction failed ({Code}: {Reason}); replacing the producer")]
    private partial void LogAbortFailed(string code, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "The transactional producer could not be created ({Code}: {Reason}); the next commit tries again")]
    private partial void LogReconnectFailed(string code, string reason);
}
