namespace Drakkar.Diagnostics.Recorder;

/// <summary>
/// One row of the flight recorder's <c>events</c> view (docs/debug-ui.md, "Schema"). Fields that do
/// not apply to a kind are null.
/// </summary>
internal sealed record FlightEvent(long Seq, DateTimeOffset At, string Kind)
{
    public const string Consumed = "consumed";
    public const string TaskFinished = "task_finished";
    public const string TaskFailed = "task_failed";
    public const string Delivered = "delivered";
    public const string DeliveryFailed = "delivery_failed";
    public const string DeadLettered = "dlq";
    public const string Committed = "committed";

    public string? Topic { get; init; }
    public int? Partition { get; init; }
    /// <summary>The first offset of a consumed range, the committed offset, or (for a task or a dead letter) the first source offset.</summary>
    public long? Offset { get; init; }
    public string? TaskId { get; init; }
    public int? Attempt { get; init; }
    /// <summary><c>kind/name</c> of the sink.</summary>
    public string? Sink { get; init; }
    public int? ExitCode { get; init; }
    public double? DurationMs { get; init; }
    /// <summary>Messages of a consumed range, payloads of a delivery or dead letter, partitions of a rebalance.</summary>
    public int? Count { get; init; }
    /// <summary>The error, or the partitions of a rebalance.</summary>
    public string? Detail { get; init; }
    public string? Stdout { get; init; }
    public string? Stderr { get; init; }
}
