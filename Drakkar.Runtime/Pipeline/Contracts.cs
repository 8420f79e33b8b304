using Drakkar.Execution;

namespace Drakkar.Pipeline;

/// <summary>Runs one attempt of a task (the executor pool, or a stand-in in tests).</summary>
internal interface ITaskExecutor
{
    /// <summary>Runs <paramref name="task"/> once; lower <paramref name="priority"/> starts first.</summary>
    ValueTask<ExecutorOutcome> ExecuteAsync(ExecutorTask task, long priority, int attempt, CancellationToken cancellationToken);
}

/// <summary>Where payloads came from: the source messages they must be traceable (and replayable) to.</summary>
internal sealed record DeliveryOrigin(string Topic, int Partition, IReadOnlyList<SourceMessage> Messages)
{
    /// <summary>The span of the hook call that returned the payloads: the parent of their delivery spans (default when tracing is off).</summary>
    public System.Diagnostics.ActivityContext Parent { get; init; }

    /// <summary>
    /// Which hook call returned the payloads, among those with the same messages: <c>on_message_complete</c>,
    /// <c>on_window_complete</c>, or <c>on_task_complete #n</c> for the n-th task of its first message. It tells apart
    /// groups with the same messages (several tasks of one message) without anything that changes between runs.
    /// </summary>
    public string Hook { get; init; } = "";

    public IEnumerable<long> Offsets => Messages.Select(m => m.Offset);
}

/// <summary>Delivers hooks' payloads to the sinks.</summary>
internal interface IPayloadDelivery
{
    /// <summary>
    /// Hands over one hook call's payloads. The returned task completes once every payload is settled (delivered,
    /// dead-lettered or skipped); it is cancelled when <paramref name="cancellationToken"/> (the partition's work being
    /// abandoned) fires first. The caller need not wait for it before doing other work.
    /// </summary>
    ValueTask DeliverAsync(CollectResult result, DeliveryOrigin origin, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="DeliverAsync"/> without a task: <paramref name="settled"/> is called once, with <c>true</c> when every
    /// payload is settled or <c>false</c> when the work was abandoned first, and <paramref name="state"/>. It runs on
    /// the delivering thread, so it must be short and must not throw. A static callback with its state allocates
    /// nothing per call (this runs once per hook call).
    /// </summary>
    void Submit(CollectResult result, DeliveryOrigin origin, CancellationToken abandoned, Action<bool, object?> settled, object? state);

    /// <summary>Source partitions that cannot progress because their dead letter cannot be stored, with the reason.</summary>
    IReadOnlyDictionary<(string Topic, int Partition), string> BlockedPartitions { get; }

    /// <summary>Payloads handed over and not yet settled.</summary>
    long InFlightPayloads { get; }

    /// <summary>
    /// True while a sink instance holds payloads for an outage (<c>on_outage: pause</c>): consumption stays paused
    /// until it is back, however few payloads are in flight.
    /// </summary>
    bool HoldingForOutage { get; }

    /// <summary>At this many payloads in flight the worker stops consuming until half of them are settled.</summary>
    long MaxInFlightPayloads { get; }

    /// <summary>Sends source messages whose processing failed (for example <c>Arrange</c> threw) to the DLQ.</summary>
    ValueTask DeadLetterAsync(DeliveryOrigin origin, string error, CancellationToken cancellationToken);

    /// <summary>
    /// Writes what batching sinks buffered for a partition; called before its offsets are committed. Throws when
    /// the data did not land (the checkpoint is then abandoned and the partition reprocessed).
    /// </summary>
    Task FlushAsync(string topic, int partition, CancellationToken cancellationToken);

    /// <summary>Drops what batching sinks buffered (or the exactly-once transaction staged) for a partition that is rewound or gone.</summary>
    void Discard(string topic, int partition);

    /// <summary>
    /// Under <c>kafka.exactly_once</c>, the transaction that must commit the source offsets together with the Kafka
    /// sinks' records (SPEC O12); null when offsets are committed by the consumer.
    /// </summary>
    Sinks.Kafka.KafkaTransaction? Transaction { get; }
}
