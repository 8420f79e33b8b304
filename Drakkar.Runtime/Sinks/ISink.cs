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

/// <summary>The payloads one sink instance receives in one call, with the partition they came from.</summary>
public sealed record SinkBatch(string Topic, int Partition, IReadOnlyList<SinkPayload> Payloads)
{
    public int Count => Payloads.Count;
}
