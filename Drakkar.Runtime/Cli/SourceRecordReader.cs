using Confluent.Kafka;
using Drakkar.Kafka;
using Drakkar.Sinks;
using Drakkar.Sinks.Dlq;

namespace Drakkar.Cli;

/// <summary>
/// Reads records of the source topic by position, for the commands that look at given messages again (<c>probe</c>,
/// <c>replay-dlq --source-messages</c>): one consumer by assignment, never joining a group and never committing, so
/// the running workers see nothing of it.
/// </summary>
internal sealed class SourceRecordReader : IDisposable
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan WatermarkTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How many records <see cref="Read"/> reads past the last one it was asked for, and the most bytes those may add: a
    /// DLQ written during one outage names runs of neighbouring source offsets, and a read per record (a watermark
    /// query, an assignment and a fetch) made <c>replay-dlq --source-messages</c> take 24 s for 1,000 records.
    /// </summary>
    private const int ReadAhead = 1000;
    private const long ReadAheadBytes = 8 << 20;

    /// <summary>The most bytes of records <see cref="Read"/> keeps between calls; the least recently used partitions' go first.</summary>
    private const long KeptBytes = 64 << 20;

    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly string _brokers;
    private readonly Dictionary<(string Topic, int Partition), Chunk> _chunks = [];
    private long _keptBytes;
    private long _lookups;

    public SourceRecordReader(string brokers, KafkaConfig security, SinkSecretMasker? masker = null)
    {
        _brokers = SecretMasker.Mask(brokers);
        KafkaNativeLibrary.EnsureLoaded();
        _consumer = new ConsumerBuilder<byte[]?, byte[]?>(KafkaSecurity.Apply(new ConsumerConfig
            {
                BootstrapServers = brokers,
                // librdkafka wants a group id; an assigned consumer never joins it, and nothing is committed.
                GroupId = $"drakkar-reader-{Guid.NewGuid():N}",
                EnableAutoCommit = false,
                EnableAutoOffsetStore = false,
                EnablePartitionEof = true,
                // A fetch at the partition's end waits this long for new records, and every other request to that broker
                // (the next watermark query, the next assignment's fetch) waits behind it: at librdkafka's 500 ms each
                // record named out of order cost a second.
                FetchWaitMaxMs = 10,
            }, security, masker))
            // librdkafka's own chatter would mix with the command's output; failures surface as exceptions.
            .SetLogHandler((_, _) => { })
            .SetErrorHandler((_, _) => { })
            .Build();
    }

    /// <summary>
    /// Up to <paramref name="count"/> records from <paramref name="offset"/> on; fewer when the partition ends first. Then
    /// up to <paramref name="readAhead"/> more that have already arrived, while they add at most
    /// <paramref name="readAheadBytes"/> (never waiting for more to be written).
    /// </summary>
    /// <exception cref="SourceReadException">
    /// The partition does not exist, the brokers did not answer, or it holds no record at <paramref name="offset"/>
    /// (it ends before it, or retention deleted it): each said as such, so that a wrong broker is not reported as a wrong offset.
    /// </exception>
    public List<ConsumeResult<byte[]?, byte[]?>> ReadFrom(string topic, int partition, long offset, int count, CancellationToken cancellationToken,
        int readAhead = 0, long readAheadBytes = 0)
    {
        var at = $"{topic}[{partition}]@{offset}";
        WatermarkOffsets marks;
        try
        {
            marks = _consumer.QueryWatermarkOffsets(new TopicPartition(topic, partition), WatermarkTimeout);
        }
        catch (KafkaException e) when (e.Error.Code is ErrorCode.UnknownTopicOrPart or ErrorCode.Local_UnknownTopic or ErrorCode.Local_UnknownPartition)
        {
            throw new SourceReadException($"{topic}[{partition}] does not exist: no topic {topic}, or it has fewer partitions", notFound: true);
        }
        catch (KafkaException e)
        {
            throw new SourceReadException($"reading {at} failed: the brokers ({_brokers}) did not answer in {WatermarkTimeout.TotalSeconds:0} s " +
                $"({SecretMasker.Mask(e.Error.Reason)})", notFound: false);
        }
        if (offset >= marks.High.Value)
            throw new SourceReadException($"no message at {at}: the partition ends before it (its next offset is {marks.High.Value})", notFound: true);
        if (offset < marks.Low.Value)
            throw new SourceReadException($"no message at {at}: the partition's oldest record is at {marks.Low.Value} (older ones were deleted by retention)",
                notFound: true);
        _consumer.Assign(new TopicPartitionOffset(topic, partition, offset));
        var records = new List<ConsumeResult<byte[]?, byte[]?>>(count);
        var deadline = DateTime.UtcNow + ReadTimeout;
        while (records.Count < count && DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested)
        {
            var record = _consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (record is null) continue;
            if (record.IsPartitionEOF) break;
            records.Add(record);
        }
        var aheadBytes = 0L;
        for (var ahead = 0; ahead < readAhead && aheadBytes < readAheadBytes && records.Count == count + ahead; ahead++)
        {
            // What the last fetch brought is already in the client's queue: a zero wait takes it, and ends at the first gap.
            var record = _consumer.Consume(TimeSpan.Zero);
            if (record is null || record.IsPartitionEOF) break;
            records.Add(record);
            aheadBytes += SizeOf(record);
        }
        // Not left fetching at the partition's end (a request every FetchWaitMaxMs) while the caller works.
        _consumer.Unassign();
        return records;
    }

    /// <summary>The records at <paramref name="source"/>'s offsets, as messages to republish with their own key and headers.</summary>
    /// <exception cref="InvalidDataException">One of them is no longer in the topic (retention, compaction) or could not be read in time.</exception>
    public IReadOnlyList<ReplayMessage> Read((string Topic, int Partition, IReadOnlyList<long> Offsets) source, CancellationToken cancellationToken)
    {
        var first = source.Offsets.Min();
        var last = source.Offsets.Max();
        var key = (source.Topic, source.Partition);
        if (!_chunks.TryGetValue(key, out var chunk) || first < chunk.From || last > chunk.Through)
        {
            List<ConsumeResult<byte[]?, byte[]?>> read;
            try
            {
                read = ReadFrom(source.Topic, source.Partition, first, (int)Math.Min(int.MaxValue, last - first + 1), cancellationToken, ReadAhead, ReadAheadBytes);
            }
            catch (SourceReadException e) when (e.NotFound)
            {
                throw new InvalidDataException($"source message {source.Topic}[{source.Partition}]@{first} is no longer in the topic ({e.Message})");
            }
            if (chunk is not null) Forget(key, chunk);
            // Offsets from the first to the last record read that are not among them are not in the topic (compacted
            // away, or transaction markers); those after the last were not read.
            chunk = new Chunk(first, read.Count > 0 ? read[^1].Offset.Value : first - 1, read.ToDictionary(r => r.Offset.Value), read.Sum(SizeOf));
            _chunks[key] = chunk;
            _keptBytes += chunk.Bytes;
            KeepWithinBudget(key);
        }
        chunk.LastUsed = ++_lookups;
        var messages = new List<ReplayMessage>(source.Offsets.Count);
        foreach (var offset in source.Offsets)
        {
            if (!chunk.Records.TryGetValue(offset, out var record))
                throw new InvalidDataException($"source message {source.Topic}[{source.Partition}]@{offset} is no longer in the topic (or could not be read)");
            messages.Add(new ReplayMessage(record.Message.Key, record.Message.Value ?? [], Kafka.KafkaHeaders.Of(record.Message.Headers)));
        }
        return messages;
    }

    /// <summary>Drops the least recently used partitions' records until those kept fit <see cref="KeptBytes"/>; never <paramref name="keep"/>'s.</summary>
    private void KeepWithinBudget((string, int) keep)
    {
        while (_keptBytes > KeptBytes && _chunks.Where(c => c.Key != keep).MinBy(c => c.Value.LastUsed) is { Value: not null } oldest)
            Forget(oldest.Key, oldest.Value);
    }

    private void Forget((string, int) key, Chunk chunk)
    {
        _chunks.Remove(key);
        _keptBytes -= chunk.Bytes;
    }

    private static long SizeOf(ConsumeResult<byte[]?, byte[]?> record) =>
        (record.Message.Key?.Length ?? 0) + (record.Message.Value?.Length ?? 0) + 64;

    /// <summary>
    /// Records of one partition read for <see cref="Read"/>: <see cref="Records"/> holds every record of
    /// <see cref="From"/> to <see cref="Through"/> that is in the topic.
    /// </summary>
    private sealed record Chunk(long From, long Through, Dictionary<long, ConsumeResult<byte[]?, byte[]?>> Records, long Bytes)
    {
        public long LastUsed { get; set; }
    }

    public void Dispose()
    {
        _consumer.Close();
        _consumer.Dispose();
    }

}

/// <summary>
/// Records could not be read at a position: <see cref="NotFound"/> when the partition or the offset is not there, else
/// the brokers could not be asked.
/// </summary>
internal sealed class SourceReadException(string message, bool notFound) : IOException(message)
{
    public bool NotFound { get; } = notFound;
}
