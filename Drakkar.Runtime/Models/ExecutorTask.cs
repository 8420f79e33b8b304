namespace Drakkar;

/// <summary>One unit of work for the executor pool: usually one run of an external binary.</summary>
public sealed class ExecutorTask
{
    public ExecutorTask(string taskId)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        TaskId = taskId;
    }

    /// <summary>Unique id (see <see cref="Drakkar.TaskId.New"/>); a retried task keeps it.</summary>
    public string TaskId { get; }

    /// <summary>Arguments passed to the binary (no shell is involved).</summary>
    public IReadOnlyList<string> Args { get; init; } = [];

    /// <summary>Text written to the child's stdin, which is then closed; null gives the child an empty stdin.</summary>
    public string? Stdin { get; init; }

    /// <summary>Environment variables for this task; they win over inherited and configured ones.</summary>
    public Dictionary<string, string> Env { get; init; } = new(StringComparer.Ordinal);

    /// <summary>The source offsets (in the arranged partition) this task serves. A message completes when every task listing it is final.</summary>
    public IReadOnlyList<long> SourceOffsets { get; init; } = [];

    /// <summary>Free-form values for the hooks (not given to the process).</summary>
    public Dictionary<string, string> Metadata { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Labels for logs and metrics.</summary>
    public Dictionary<string, string> Labels { get; init; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Persistent mode only: how the request carries stdin. <see cref="TaskFraming.LengthPrefixed"/> sends it as raw
    /// bytes after the request line instead of a JSON string (docs/executor-protocol.md). Spawn mode ignores it.
    /// </summary>
    public TaskFraming Framing { get; init; }

    /// <summary>A binary for this task only; overrides <c>executor.binary_path</c>.</summary>
    public string? BinaryPath { get; init; }

    /// <summary>When set, the task is not run: this result flows through the hooks as if it had been.</summary>
    public PrecomputedResult? Precomputed { get; init; }

    /// <summary>For a replacement task, the id of the task it replaces (set by the framework when <c>OnError</c> replaces a task).</summary>
    public string? ParentTaskId
    {
        get => _parentTaskId;
        init => _parentTaskId = value;
    }

    private string? _parentTaskId;

    internal void InheritParent(string parentTaskId) => _parentTaskId ??= parentTaskId;

    public override string ToString() => TaskId;
}

/// <summary>How a persistent executor process receives a task's stdin (docs/executor-protocol.md).</summary>
public enum TaskFraming
{
    /// <summary>Inside the JSON request line, as a string.</summary>
    JsonLine,
    /// <summary>As <c>stdin_length</c> raw bytes after the request line: no escaping, for large or binary-ish input.</summary>
    LengthPrefixed,
}

/// <summary>The outcome of a task that does not need to run.</summary>
public sealed record PrecomputedResult(string Stdout = "", string Stderr = "", int ExitCode = 0, TimeSpan Duration = default);
