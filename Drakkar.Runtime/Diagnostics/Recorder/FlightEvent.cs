using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Drakkar.Diagnostics.Recorder;

/// <summary>
/// One row of the flight recorder's <c>events</c> view (docs/debug-ui.md, "Schema"). Fields that do
/// not apply to a kind are null. A struct: the recorder keeps events in arrays (the UI's recent lists, the writer's
/// buffer) instead of allocating one object per task that would outlive several collections.
/// The task id is copied into the struct (up to <see cref="InlineIdChars"/> characters) rather than referenced: those
/// arrays are large and long-lived, and a reference from them kept every recent task's id string alive until it was
/// promoted to generation 2, which took the recorder's extra gen-2 collections (docs/performance.md). The id's string
/// is built again when something reads <see cref="TaskId"/> (the UI, at request time); the writer encodes
/// <see cref="TaskIdChars"/> without building it.
/// </summary>
internal readonly record struct FlightEvent(long Seq, DateTimeOffset At, string Kind)
{
    /// <summary>Task ids up to this long are copied into the event; a longer one (rare: a prefix of more than 22 characters) is referenced.</summary>
    internal const int InlineIdChars = 48;

    private readonly IdChars _idChars;
    // The id's length + 1 (0: no id), and the id itself when it does not fit _idChars.
    private readonly int _idLengthPlusOne;
    private readonly string? _longId;

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
    public string? TaskId
    {
        get => _idLengthPlusOne == 0 ? null : _longId ?? new string(TaskIdChars);
        init
        {
            _idLengthPlusOne = value is null ? 0 : value.Length + 1;
            if (value is null || value.Length > InlineIdChars)
            {
                _longId = value;
                return;
            }
            var chars = default(IdChars);
            value.AsSpan().CopyTo(chars);
            _idChars = chars;
        }
    }

    /// <summary>The task id's characters (empty without one), read in place.</summary>
    [UnscopedRef]
    public ReadOnlySpan<char> TaskIdChars =>
        _longId is not null ? _longId : ((ReadOnlySpan<char>)_idChars)[..Math.Max(0, _idLengthPlusOne - 1)];

    public bool HasTaskId => _idLengthPlusOne != 0;

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

    [InlineArray(InlineIdChars)]
    private struct IdChars
    {
        private char _first;
    }
}
