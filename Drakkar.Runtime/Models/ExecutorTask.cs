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
    public Dictionary<string, string> Env
    {
        // Created on first use: most tasks set none of the three maps, and a worker makes one task per message.
        get => _env ??= new(StringComparer.Ordinal);
        init => _env = value;
    }

    /// <summary>The source offsets (in the arranged partition) this task serves. A message completes when every task listing it is final.</summary>
    public IReadOnlyList<long> SourceOffsets { get; init; } = [];

    /// <summary>Free-form strings for the hooks (not given to the process). For typed data prefer <see cref="State"/>.</summary>
    public Dictionary<string, string> Metadata
    {
        get => _metadata ??= new(StringComparer.Ordinal);
        init => _metadata = value;
    }

    /// <summary>
    /// Any object the later hooks need (the decoded request, a record of your own): set it in <c>Arrange</c>, read it
    /// back in <c>OnTaskComplete</c>, <c>OnError</c> or <c>OnMessageComplete</c> with <see cref="StateAs{T}"/> or a
    /// pattern (<c>task.State is MyState s</c>). It never leaves the worker process: it is not serialized and not
    /// given to the executor. A replacement task (from <c>OnError</c>) without a state of its own gets the failed
    /// task's.
    /// </summary>
    public object? State
    {
        get => _state;
        init => _state = value;
    }

    /// <summary>Labels for logs and metrics.</summary>
    public Dictionary<string, string> Labels
    {
        get => _labels ??= new(StringComparer.Ordinal);
        init => _labels = value;
    }

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
    private object? _state;
    private Dictionary<string, string>? _env, _metadata, _labels;

    /// <summary>The task's own environment variables without creating the map: empty when it sets none.</summary>
    internal IReadOnlyDictionary<string, string> EnvOrEmpty => (IReadOnlyDictionary<string, string>?)_env ?? NoEnv;

    private static readonly Dictionary<string, string> NoEnv = [];

    /// <summary>The task's <see cref="State"/> as a <typeparamref name="T"/>.</summary>
    /// <exception cref="InvalidOperationException">The task carries no state, or a state of another type.</exception>
    public T StateAs<T>() => _state is T state
        ? state
        : throw new InvalidOperationException(_state is null
            ? $"task {TaskId} carries no state: set State in Arrange (or on the replacement task) to read it as {typeof(T).Name}"
            : $"task {TaskId} carries a state of type {_state.GetType().Name}, not {typeof(T).Name}");

    /// <summary>A replacement task joins its parent: it remembers the parent's id and, unless it has its own, takes its state.</summary>
    internal void InheritParent(ExecutorTask parent)
    {
        _parentTaskId ??= parent.TaskId;
        _state ??= parent._state;
        Generation = parent.Generation + 1;
    }

    /// <summary>How many replacements separate this task from the one <c>Arrange</c> returned (0 for that one).</summary>
    internal int Generation { get; private set; }

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
