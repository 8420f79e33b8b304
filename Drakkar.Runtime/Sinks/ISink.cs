using System.Diagnostics;

namespace Drakkar.Sinks;

/// <summary>
/// One configured sink instance: a connection to a destination that takes batches of payloads. The
/// <see cref="SinkManager"/> owns routing, retries, the circuit breaker and the DLQ; a sink only connects, writes
/// and closes. Plugin kinds implement this interface too (see <see cref="SinkRegistry"/>).
/// </summary>
public interface ISink
{
    /// <summary>The kind as it appears in configuration: <c>kafka</c>, <c>postgres</c>, … or a plugin kind.</summary>
    string Kind { get; }

    /// <summary>The instance name (the key under <c>sinks.{kind}</c>).</summary>
    string Name { get; }

    /// <summary>
    /// True when delivering the same batch twice is harmless (write-replace, upsert, broker dedup). Only then does
    /// the manager retry transient failures on its own before the handler hears of them.
    /// </summary>
    bool IsIdempotent { get; }

    /// <summary>Whether the sink currently holds a usable connection (readiness).</summary>
    bool IsConnected { get; }

    /// <summary>Opens the connection. Throws with a clear message when the destination cannot be reached.</summary>
    ValueTask ConnectAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Writes every payload of <paramref name="batch"/> or throws. Throw <see cref="SinkTransientException"/> (or an
    /// I/O, socket or timeout exception) for failures a quick retry may fix, and <see cref="SinkBackpressureException"/>
    /// when the destination asks to be left alone for a while.
    /// </summary>
    ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken);

    /// <summary>Releases the connection. May throw; the manager logs and moves on.</summary>
    ValueTask CloseAsync(CancellationToken cancellationToken);
}

/// <summary>
/// A sink that buffers what <see cref="ISink.DeliverAsync"/> hands it and writes it at checkpoints (the Quix
/// batching contract, SPEC O9). The host calls <see cref="SinkManager.FlushAsync"/> for a partition before it
/// commits that partition's offsets; a failed flush aborts the commit and the partition's uncommitted work is redone.
/// </summary>
public interface IBatchingSink : ISink
{
    /// <summary>Writes everything buffered for the partition; throws (possibly <see cref="SinkBackpressureException"/>) when it cannot.</summary>
    ValueTask FlushAsync(string topic, int partition, CancellationToken cancellationToken);

    /// <summary>Forgets what is buffered for the partition (it was revoked or rewound; the data will be redone).</summary>
    void Discard(string topic, int partition);
}

/// <summary>
/// The payloads one sink instance receives in one call. The delivery engine packs the payloads of many hook calls
/// (from any partition) into one batch, so a sink makes one round trip for all of them.
/// </summary>
/// <remarks>
/// A sink that learns the outcome of each payload separately (Kafka delivery reports, one HTTP request per payload)
/// reports the ones that failed with <see cref="Fail"/> and returns normally: only the hook calls those payloads came
/// from take the failure path. A sink that throws fails the whole batch; the engine then delivers each hook call's
/// payloads on their own, so one bad payload never sends its neighbours to the DLQ.
/// </remarks>
public sealed class SinkBatch
{
    private readonly ActivityContext[]? _traceContexts;
    // Given, or made from the groups the first time a sink asks (most sinks never do).
    private PayloadSource[]? _sources;
    private Exception?[]? _failures;

    public SinkBatch(string topic, int partition, IReadOnlyList<SinkPayload> payloads)
    {
        Topic = topic;
        Partition = partition;
        Payloads = payloads;
    }

    internal SinkBatch(string topic, int partition, IReadOnlyList<SinkPayload> payloads, ActivityContext[]? traceContexts,
        PayloadSource[]? sources = null, IReadOnlyList<Delivery.PayloadGroup>? groups = null)
        : this(topic, partition, payloads)
    {
        _traceContexts = traceContexts;
        _sources = sources;
        Groups = groups;
    }

    /// <summary>
    /// The hook calls the payloads came from, in batch order (each group's payloads are consecutive); null for a batch
    /// not built by the delivery engine. The exactly-once Kafka sink stages each group whole, under its source offsets.
    /// </summary>
    internal IReadOnlyList<Delivery.PayloadGroup>? Groups { get; }

    /// <summary>The source topic the payloads came from.</summary>
    public string Topic { get; }

    /// <summary>
    /// The source partition when every payload came from one, else -1. A <see cref="IBatchingSink"/> always gets
    /// batches of one partition.
    /// </summary>
    public int Partition { get; }

    public IReadOnlyList<SinkPayload> Payloads { get; }

    public int Count => Payloads.Count;

    /// <summary>Marks payload <paramref name="index"/> as not written, with the reason; the rest of the batch counts as delivered.</summary>
    public void Fail(int index, Exception error)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        ArgumentNullException.ThrowIfNull(error);
        var failures = Volatile.Read(ref _failures) ?? Interlocked.CompareExchange(ref _failures, new Exception?[Count], null) ?? _failures!;
        Interlocked.CompareExchange(ref failures[index], error, null);
    }

    /// <summary>The reason payload <paramref name="index"/> failed, or null when it was written (or the batch was not tried).</summary>
    public Exception? FailureOf(int index) => Volatile.Read(ref _failures)?[index];

    /// <summary>
    /// The span payload <paramref name="index"/> is delivered under (its <c>delivery</c> span), for a sink that carries
    /// trace context to its destination (the Kafka sink writes it as a <c>traceparent</c> header); default when tracing is off.
    /// </summary>
    public ActivityContext TraceContextOf(int index) => _traceContexts?[index] ?? default;

    /// <summary>The hook call payload <paramref name="index"/> came from and its place among that call's payloads for this instance; null when the batch was built without them (outside the delivery engine).</summary>
    internal PayloadSource? SourceOf(int index)
    {
        if (Volatile.Read(ref _sources) is { } sources) return sources[index];
        if (Groups is not { } groups) return null;
        return (Interlocked.CompareExchange(ref _sources, SourcesOf(groups, Count), null) ?? _sources!)[index];
    }

    /// <summary>Each payload's source, the groups' payloads being consecutive in batch order.</summary>
    private static PayloadSource[] SourcesOf(IReadOnlyList<Delivery.PayloadGroup> groups, int count)
    {
        var sources = new PayloadSource[count];
        var index = 0;
        foreach (var group in groups)
            for (var i = 0; i < group.Count; i++, index++) sources[index] = new PayloadSource(group.Origin, i);
        return sources;
    }

    /// <summary>True when <see cref="Fail"/> was called for some payload.</summary>
    public bool HasFailures => Volatile.Read(ref _failures) is not null;
}

/// <summary>
/// Where one payload of a batch came from: the hook call (<see cref="Pipeline.DeliveryOrigin"/>) and the payload's
/// index among that call's payloads for the instance. The same on every attempt, and on a redelivery of its messages.
/// </summary>
internal readonly record struct PayloadSource(Pipeline.DeliveryOrigin Origin, int Index);
