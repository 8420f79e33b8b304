using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Drakkar.Sinks;
using Drakkar.Sinks.Dlq;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.IntegrationTests.Sinks;

/// <summary>
/// Every sink test shares one set of servers and runs one at a time: the Redis outage test stops the server the
/// others write to, and the machine is small.
/// </summary>
[CollectionDefinition(Name)]
public sealed class SinksCollection : ICollectionFixture<PostgresServer>, ICollectionFixture<RedisServer>, ICollectionFixture<KafkaBroker>,
    ICollectionFixture<HttpReceiver>
{
    public const string Name = "sinks";
}

/// <summary>A sink whose behaviour each test scripts; it records every batch and when it arrived.</summary>
internal sealed class ScriptedSink(string kind, string name, bool idempotent = false) : ISink
{
    private int _calls;

    public string Kind { get; } = kind;
    public string Name { get; } = name;
    public bool IsIdempotent { get; } = idempotent;
    public bool IsConnected { get; set; }
    public bool Closed { get; private set; }

    /// <summary>Runs on each delivery with the 1-based call number; throw to fail it.</summary>
    public Func<SinkBatch, int, ValueTask> Behavior { get; set; } = (_, _) => ValueTask.CompletedTask;

    public Func<ValueTask> OnConnect { get; set; } = () => ValueTask.CompletedTask;
    public Func<ValueTask> OnClose { get; set; } = () => ValueTask.CompletedTask;

    public ConcurrentQueue<SinkBatch> Delivered { get; } = new();
    /// <summary>Monotonic <see cref="System.Diagnostics.Stopwatch"/> timestamps of each call.</summary>
    public ConcurrentQueue<long> CallTimes { get; } = new();
    public int Calls => Volatile.Read(ref _calls);

    public async ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        await OnConnect();
        IsConnected = true;
    }

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var call = Interlocked.Increment(ref _calls);
        CallTimes.Enqueue(System.Diagnostics.Stopwatch.GetTimestamp());
        await Behavior(batch, call);
        Delivered.Enqueue(batch);
    }

    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        Closed = true;
        IsConnected = false;
        await OnClose();
    }
}

/// <summary>A DLQ in memory, for manager tests that are not about Kafka.</summary>
internal sealed class RecordingDlq : IDeadLetterQueue
{
    public ConcurrentQueue<DeadLetter> Letters { get; } = new();
    public string Destination => "memory";
    public IReadOnlyDictionary<(string Topic, int Partition), string> BlockedPartitions { get; } =
        new Dictionary<(string Topic, int Partition), string>();
    public ValueTask ConnectAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask WriteAsync(DeadLetter letter, CancellationToken cancellationToken)
    {
        Letters.Enqueue(letter);
        return ValueTask.CompletedTask;
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks = DateTimeOffset.UtcNow.Ticks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);
    public override long GetTimestamp() => Interlocked.Read(ref _ticks);
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>Records requested delays and returns at once, so retry spacing is observable without waiting.</summary>
internal sealed class RecordedDelays
{
    public ConcurrentQueue<TimeSpan> Requested { get; } = new();

    public Task Delay(TimeSpan delay, CancellationToken cancellationToken)
    {
        Requested.Enqueue(delay);
        return Task.CompletedTask;
    }
}

internal static class SinkTestKit
{
    public static DeliveryOrigin Origin(string topic = "source", int partition = 0, params long[] offsets)
    {
        if (offsets.Length == 0) offsets = [42];
        return new DeliveryOrigin(topic, partition, [.. offsets.Select(o => new SourceMessage
        {
            Topic = topic, Partition = partition, Offset = o,
            Key = Encoding.UTF8.GetBytes($"key-{o}"),
            Value = Encoding.UTF8.GetBytes($"{{\"request\":{o}}}"),
            Headers = [new("trace-id", Encoding.UTF8.GetBytes($"trace-{o}")), new("binary", [0, 1, 255])],
        })]);
    }

    public static SinkManager Manager(IEnumerable<ISink> sinks, IDeadLetterQueue dlq, SinkManagerOptions? options = null, DrakkarMetrics? metrics = null) =>
        new(sinks, dlq, options ?? new SinkManagerOptions { Delay = (_, _) => Task.CompletedTask }, metrics ?? new DrakkarMetrics(), NullLoggerFactory.Instance);

    /// <summary>
    /// Connects <paramref name="sink"/>, delivers the batches at once, closes it; returns what was thrown, else the first
    /// payload failure the sink reported (<see cref="SinkBatch.Fail"/>), or null.
    /// </summary>
    public static async Task<Exception?> DeliverOnceAsync(ISink sink, params SinkBatch[] batches)
    {
        await sink.ConnectAsync(default);
        try
        {
            await Task.WhenAll(batches.Select(b => sink.DeliverAsync(b, default).AsTask()));
            return batches.SelectMany(b => Enumerable.Range(0, b.Count).Select(b.FailureOf)).FirstOrDefault(f => f is not null);
        }
        catch (Exception e)
        {
            return e;
        }
        finally
        {
            await sink.CloseAsync(default);
        }
    }

    public static CollectResult Http(int count, string sink = "")
    {
        var result = new CollectResult();
        for (var i = 0; i < count; i++) result.Http.Add(HttpPayload.Of(Reading.Sample(i), sink));
        return result;
    }

    /// <summary>Reads <paramref name="count"/> records from the start of <paramref name="topic"/>.</summary>
    public static List<ConsumeResult<byte[]?, byte[]>> Consume(string bootstrap, string topic, int count, TimeSpan? timeout = null)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = $"reader-{Guid.NewGuid():N}",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        };
        using var consumer = new ConsumerBuilder<byte[]?, byte[]>(config).Build();
        consumer.Subscribe(topic);
        var records = new List<ConsumeResult<byte[]?, byte[]>>();
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (records.Count < count && DateTime.UtcNow < deadline)
        {
            var record = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (record is { IsPartitionEOF: false }) records.Add(record);
        }
        consumer.Close();
        if (records.Count < count)
            throw new TimeoutException($"read {records.Count} of {count} records from {topic} before the deadline");
        return records;
    }

    public static JsonElement Json(byte[] value) => JsonDocument.Parse(value).RootElement.Clone();
}
