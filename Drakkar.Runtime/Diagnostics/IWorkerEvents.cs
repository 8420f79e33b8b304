using Drakkar.Execution;
using Drakkar.Sinks.Dlq;

namespace Drakkar.Diagnostics;

/// <summary>
/// What happens in a worker, as the flight recorder sees it. Called on the pipeline's own threads, so every method
/// must return at once and never throw; <see cref="None"/> (the default) does nothing, and each method does nothing
/// unless a listener overrides it.
/// </summary>
internal interface IWorkerEvents
{
    /// <summary>Events nobody listens to: the worker without <c>debug.enabled</c>.</summary>
    static readonly IWorkerEvents None = new NoEvents();

    /// <summary>False for <see cref="None"/>: callers skip building arguments.</summary>
    bool IsOn { get; }

    void MessageConsumed(SourceMessage message) { }

    /// <summary>A task attempt ended (its start is the finish time minus the outcome's duration).</summary>
    void TaskFinished(ExecutorTask task, int partition, int attempt, in ExecutorOutcome outcome) { }

    /// <summary>A sink accepted <paramref name="payloads"/> payloads in <paramref name="duration"/>.</summary>
    void Delivered(string sinkKind, string sinkName, int payloads, TimeSpan duration) { }

    /// <summary>A delivery attempt failed with <paramref name="error"/> (already masked).</summary>
    void DeliveryFailed(string sinkKind, string sinkName, int payloads, string error) { }

    /// <summary>A dead letter was stored.</summary>
    void DeadLettered(DeadLetter letter) { }

    /// <summary>Partitions were assigned, revoked or lost (<paramref name="kind"/>).</summary>
    void Rebalanced(string kind, IReadOnlyList<int> partitions) { }

    /// <summary>The committed offset of a partition moved to <paramref name="offset"/>.</summary>
    void Committed(string topic, int partition, long offset) { }

    /// <summary>A sink instance started holding payloads for an outage (<c>on_outage: pause</c>).</summary>
    void OutageStarted(string sinkKind, string sinkName) { }

    /// <summary>
    /// A sink instance holds no payload any more, after <paramref name="held"/>: it is back (<paramref name="back"/>),
    /// or what it held was let go for <paramref name="reason"/>.
    /// </summary>
    void OutageEnded(string sinkKind, string sinkName, TimeSpan held, bool back, string reason) { }

    private sealed class NoEvents : IWorkerEvents
    {
        public bool IsOn => false;
    }
}
