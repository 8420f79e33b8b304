using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;

namespace Drakkar.Diagnostics.Recorder;

/// <summary>
/// One row of the flight recorder's <c>events</c> view (docs/debug-ui.md, "Schema"). Fields that do not apply to a kind
/// are null. A struct: the recorder keeps events in arrays (the recording threads' lanes, the writer's batch) instead of
/// allocating one object per task that would outlive several collections.
/// Kept small (120 bytes, two cache lines), because every finished task writes one into its thread's lane, and the
/// writer and the UI copy it again on the other core: at 270 bytes those copies cost a busy worker more than SQLite did
/// (docs/performance.md). So: the time as ticks, the kind as its code, absent
/// numbers as flags rather than nullable fields, and the rare texts (error, output excerpts, an unusual kind or task id)
/// in one object of their own.
/// The task id's characters are copied into the event (up to <see cref="InlineIdChars"/> ASCII characters) rather than
/// referenced: a reference from the large, long-lived arrays kept every recent task's id string alive until it was
/// promoted to generation 2, which took the recorder's extra gen-2 collections. The id's string is built again when
/// something reads <see cref="TaskId"/> (the UI, at request time); the writer encodes <see cref="InlineTaskId"/> in place.
/// </summary>
internal readonly struct FlightEvent
{
    /// <summary>Task ids up to this long, all ASCII, are copied into the event; any other (rare: a prefix of more than 14 characters) is referenced.</summary>
    internal const int InlineIdChars = 40;

    public const string Consumed = "consumed";
    public const string TaskFinished = "task_finished";
    public const string TaskFailed = "task_failed";
    public const string Delivered = "delivered";
    public const string DeliveryFailed = "delivery_failed";
    public const string DeadLettered = "dlq";
    public const string Committed = "committed";
    public const string Assigned = "assigned";
    public const string Revoked = "revoked";
    public const string Lost = "lost";
    public const string OutageStarted = "outage_started";
    public const string OutageEnded = "outage_ended";

    /// <summary>The kinds with a code, at their code (the <c>events</c> view names them from this list); 0 is "another kind".</summary>
    internal static readonly string?[] KindsByCode =
        [null, Consumed, TaskFinished, TaskFailed, Delivered, DeliveryFailed, DeadLettered, Committed, Assigned, Revoked, Lost,
            OutageStarted, OutageEnded];

    [Flags]
    private enum Present : byte
    {
        Partition = 1,
        Offset = 2,
        Attempt = 4,
        ExitCode = 8,
        Duration = 16,
        Count = 32,
        MemoryOnly = 64,
    }

    private readonly long _atTicks;
    private readonly long _offset;
    private readonly long _durationTicks;
    private readonly int _partition;
    private readonly int _attempt;
    private readonly int _exitCode;
    private readonly int _count;
    private readonly Present _present;
    // The id's length + 1 when it is inline (0: none inline).
    private readonly byte _inlineIdLengthPlusOne;
    private readonly IdBytes _idBytes;
    private readonly Rare? _rare;

    public FlightEvent(long seq, DateTimeOffset at, string kind)
    {
        Seq = seq;
        _atTicks = at.UtcTicks;
        KindCode = CodeOf(kind);
        if (KindCode == 0) _rare = new Rare { Kind = kind };
    }

    // The recorder passes the constants above, so comparing references finds them; equal text is looked up after.
    private static byte CodeOf(string kind)
    {
        for (var code = 1; code < KindsByCode.Length; code++)
            if (ReferenceEquals(KindsByCode[code], kind)) return (byte)code;
        var found = Array.IndexOf(KindsByCode, kind, 1);
        return found > 0 ? (byte)found : (byte)0;
    }

    public long Seq { get; }

    public DateTimeOffset At => new(_atTicks, TimeSpan.Zero);

    public long AtUnixMs => (_atTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMillisecond;

    /// <summary>The kind's index in <see cref="KindsByCode"/>; 0 for any other kind (stored by name).</summary>
    public byte KindCode { get; }

    public string Kind => KindsByCode[KindCode] ?? _rare!.Kind!;

    public string? Topic { get; init; }

    public int? Partition
    {
        get => Has(Present.Partition) ? _partition : null;
        init
        {
            _partition = value.GetValueOrDefault();
            if (value is not null) _present |= Present.Partition;
        }
    }

    /// <summary>The first offset of a consumed range, the committed offset, or (for a task or a dead letter) the first source offset.</summary>
    public long? Offset
    {
        get => Has(Present.Offset) ? _offset : null;
        init
        {
            _offset = value.GetValueOrDefault();
            if (value is not null) _present |= Present.Offset;
        }
    }

    public string? TaskId
    {
        get => _inlineIdLengthPlusOne != 0 ? Encoding.ASCII.GetString(InlineTaskId) : _rare?.TaskId;
        init
        {
            if (value is null) return;
            var bytes = default(IdBytes);
            if (value.Length <= InlineIdChars && Ascii.FromUtf16(value, bytes, out _) == System.Buffers.OperationStatus.Done)
            {
                _idBytes = bytes;
                _inlineIdLengthPlusOne = (byte)(value.Length + 1);
                return;
            }
            _rare = (_rare ?? Rare.None) with { TaskId = value };
        }
    }

    /// <summary>The task id's characters when they are copied into the event (ASCII), read in place; empty otherwise.</summary>
    [UnscopedRef]
    public ReadOnlySpan<byte> InlineTaskId => ((ReadOnlySpan<byte>)_idBytes)[..Math.Max(0, _inlineIdLengthPlusOne - 1)];

    /// <summary>Whether the task id is <see cref="InlineTaskId"/> (otherwise <see cref="TaskId"/> is null or a referenced string).</summary>
    public bool HasInlineTaskId => _inlineIdLengthPlusOne != 0;

    public int? Attempt
    {
        get => Has(Present.Attempt) ? _attempt : null;
        init
        {
            _attempt = value.GetValueOrDefault();
            if (value is not null) _present |= Present.Attempt;
        }
    }

    /// <summary><c>kind/name</c> of the sink.</summary>
    public string? Sink { get; init; }

    public int? ExitCode
    {
        get => Has(Present.ExitCode) ? _exitCode : null;
        init
        {
            _exitCode = value.GetValueOrDefault();
            if (value is not null) _present |= Present.ExitCode;
        }
    }

    /// <summary>Kept to the tick (0.1 µs).</summary>
    public double? DurationMs
    {
        get => Has(Present.Duration) ? (double)_durationTicks / TimeSpan.TicksPerMillisecond : null;
        init
        {
            _durationTicks = (long)Math.Round(value.GetValueOrDefault() * TimeSpan.TicksPerMillisecond);
            if (value is not null) _present |= Present.Duration;
        }
    }

    /// <summary>Messages of a consumed range, payloads of a delivery or dead letter, partitions of a rebalance.</summary>
    public int? Count
    {
        get => Has(Present.Count) ? _count : null;
        init
        {
            _count = value.GetValueOrDefault();
            if (value is not null) _present |= Present.Count;
        }
    }

    /// <summary>The error, or the partitions of a rebalance.</summary>
    public string? Detail
    {
        get => _rare?.Detail;
        init
        {
            if (value is null) return;
            _rare = (_rare ?? Rare.None) with { Detail = value };
        }
    }

    public string? Stdout
    {
        get => _rare?.Stdout;
        init
        {
            if (value is null) return;
            _rare = (_rare ?? Rare.None) with { Stdout = value };
        }
    }

    public string? Stderr
    {
        get => _rare?.Stderr;
        init
        {
            if (value is null) return;
            _rare = (_rare ?? Rare.None) with { Stderr = value };
        }
    }

    /// <summary>Kept in memory for the UI and not stored (a task shorter than <c>debug.event_min_duration_ms</c>, or nothing is stored).</summary>
    public bool MemoryOnly
    {
        get => Has(Present.MemoryOnly);
        init
        {
            if (value) _present |= Present.MemoryOnly;
        }
    }

    private bool Has(Present field) => (_present & field) != 0;

    /// <summary>
    /// What most events do not have: texts, and a kind or a task id that does not fit the event itself. Immutable, so an
    /// event copied with <c>with</c> never changes the original's.
    /// </summary>
    private sealed record Rare
    {
        public static readonly Rare None = new();
        public string? Kind { get; init; }
        public string? TaskId { get; init; }
        public string? Detail { get; init; }
        public string? Stdout { get; init; }
        public string? Stderr { get; init; }
    }

    [InlineArray(InlineIdChars)]
    private struct IdBytes
    {
        private byte _first;
    }
}
