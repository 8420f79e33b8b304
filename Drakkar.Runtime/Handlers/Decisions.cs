namespace Drakkar;

/// <summary>What <c>OnError</c> decides for a failed task.</summary>
public sealed class ErrorDecision
{
    private ErrorDecision(ErrorDecisionKind kind, IReadOnlyList<ExecutorTask> replacements)
    {
        Kind = kind;
        Replacements = replacements;
    }

    public ErrorDecisionKind Kind { get; }

    /// <summary>For <see cref="ErrorDecisionKind.Replace"/>, the tasks that take the failed one's place.</summary>
    public IReadOnlyList<ExecutorTask> Replacements { get; }

    /// <summary>Run the same task again (same id), up to <c>executor.max_retries</c> times.</summary>
    public static ErrorDecision Retry { get; } = new(ErrorDecisionKind.Retry, []);

    /// <summary>Accept the failure as final.</summary>
    public static ErrorDecision Skip { get; } = new(ErrorDecisionKind.Skip, []);

    /// <summary>
    /// Replace the failed task with <paramref name="tasks"/>. Each inherits the failed task's id as its parent and
    /// joins every message it serves before the failed task leaves them; an empty list drops the task.
    /// </summary>
    public static ErrorDecision Replace(IEnumerable<ExecutorTask> tasks) => new(ErrorDecisionKind.Replace, [.. tasks]);
}

public enum ErrorDecisionKind
{
    Retry,
    Skip,
    Replace,
}

/// <summary>What <c>OnDeliveryError</c> decides for payloads a sink failed to take.</summary>
public enum DeliveryAction
{
    /// <summary>Write the payloads to the dead letter queue (the default).</summary>
    Dlq,
    /// <summary>Deliver again, up to <c>executor.max_retries</c> times, then fall through to the DLQ.</summary>
    Retry,
    /// <summary>Drop the payloads (counted and logged).</summary>
    Skip,
}

/// <summary>A delivery failure handed to <c>OnDeliveryError</c>.</summary>
public sealed record DeliveryError(
    SinkKind SinkKind,
    string SinkName,
    string Error,
    IReadOnlyList<SinkPayload> Payloads,
    int Attempt)
{
    /// <summary>For a plugin sink, its kind name.</summary>
    public string? CustomKind { get; init; }
}

/// <summary>Tasks of the same partition that are arranged but not final yet, for <c>Arrange</c> to consult.</summary>
public sealed class PendingContext(IReadOnlyList<ExecutorTask> pendingTasks)
{
    public static PendingContext Empty { get; } = new([]);

    public IReadOnlyList<ExecutorTask> PendingTasks { get; } = pendingTasks;

    /// <summary>Ids of the pending tasks.</summary>
    public IEnumerable<string> PendingTaskIds => PendingTasks.Select(t => t.TaskId);
}

/// <summary>A topic partition handed to <c>OnAssign</c>/<c>OnRevoke</c>.</summary>
public readonly record struct PartitionId(string Topic, int Partition)
{
    public override string ToString() => $"{Topic}[{Partition}]";
}
