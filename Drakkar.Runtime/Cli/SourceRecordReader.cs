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

    private readonly IConsumer<byte[]?, byte[]?> _consumer;

    public SourceRecordReader(string brokers, KafkaConfig security, SinkSecretMasker? masker = null)
    {
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
    public List<ConsumeResult<byte[]?, byte[]?>> ReadFrom(string topic, int partition, long offset, int count, CancellationToken cancellationToken)
    {
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
        var found = ReadFrom(source.Topic, source.Partition, first, (int)Math.Min(int.MaxValue, last - first + 1), cancellationToken)
            .ToDictionary(r => r.Offset.Value);
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
