namespace Drakkar.Sinks.Dlq;

/// <summary>Where failed payloads go. A write returns only once the record is durably stored, or throws on cancellation.</summary>
public interface IDeadLetterQueue
{
    /// <summary>The destination, for logs (a Kafka topic for the built-in queue).</summary>
    string Destination { get; }

    ValueTask ConnectAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Stores <paramref name="letter"/>, retrying for as long as it takes: a dead letter is never dropped. Throws only
    /// <see cref="OperationCanceledException"/>; until then the caller's offsets stay uncommitted.
    /// </summary>
    ValueTask WriteAsync(DeadLetter letter, CancellationToken cancellationToken);

    ValueTask CloseAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Source partitions whose dead letter the queue cannot store as it is (too large, not authorized), with the
    /// reason; the worker pauses them and reports them as not ready until the write succeeds.
    /// </summary>
    IReadOnlyDictionary<(string Topic, int Partition), string> BlockedPartitions { get; }
}
