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

    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly string _brokers;

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
            }, security, masker))
            // librdkafka's own chatter would mix with the command's output; failures surface as exceptions.
            .SetLogHandler((_, _) => { })
            .SetErrorHandler((_, _) => { })
            .Build();
    }

    /// <summary>Up to <paramref name="count"/> records from <paramref name="offset"/> on; fewer when the partition ends first.</summary>
    /// <exception cref="SourceReadException">
    /// The partition does not exist, the brokers did not answer, or it holds no record at <paramref name="offset"/>
    /// (it ends before it, or retention deleted it): each said as such, so that a wrong broker is not reported as a wrong offset.
    /// </exception>
    public List<ConsumeResult<byte[]?, byte[]?>> ReadFrom(string topic, int partition, long offset, int count, CancellationToken cancellationToken)
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
        return records;
    }

    /// <summary>The records at <paramref name="source"/>'s offsets, as messages to republish with their own key and headers.</summary>
    /// <exception cref="InvalidDataException">One of them is no longer in the topic (retention, compaction) or could not be read in time.</exception>
    public IReadOnlyList<ReplayMessage> Read((string Topic, int Partition, IReadOnlyList<long> Offsets) source, CancellationToken cancellationToken)
    {
        var first = source.Offsets.Min();
        var last = source.Offsets.Max();
        Dictionary<long, ConsumeResult<byte[]?, byte[]?>> found;
        try
        {
            found = ReadFrom(source.Topic, source.Partition, first, (int)Math.Min(int.MaxValue, last - first + 1), cancellationToken)
                .ToDictionary(r => r.Offset.Value);
        }
        catch (SourceReadException e) when (e.NotFound)
        {
            throw new InvalidDataException($"source message {source.Topic}[{source.Partition}]@{first} is no longer in the topic ({e.Message})");
        }
        var messages = new List<ReplayMessage>(source.Offsets.Count);
        foreach (var offset in source.Offsets)
        {
            if (!found.TryGetValue(offset, out var record))
                throw new InvalidDataException($"source message {source.Topic}[{source.Partition}]@{offset} is no longer in the topic (or could not be read)");
            messages.Add(new ReplayMessage(record.Message.Key, record.Message.Value ?? [], HeadersOf(record.Message.Headers)));
        }
        return messages;
    }

    public void Dispose()
    {
        _consumer.Close();
        _consumer.Dispose();
    }

    internal static IReadOnlyList<KeyValuePair<string, byte[]>> HeadersOf(Headers? headers) =>
        headers is null ? [] : [.. headers.Select(h => new KeyValuePair<string, byte[]>(h.Key, h.GetValueBytes()))];
}

/// <summary>
/// Records could not be read at a position: <see cref="NotFound"/> when the partition or the offset is not there, else
/// the brokers could not be asked.
/// </summary>
internal sealed class SourceReadException(string message, bool notFound) : IOException(message)
{
    public bool NotFound { get; } = notFound;
}
