using Npgsql;

namespace Drakkar;

/// <summary>
/// What every handler shares: the optional hooks with their safe defaults, and the members the source generator
/// overrides (declared sinks, periodic methods). Derive from <see cref="DrakkarHandler"/> or
/// <see cref="DrakkarHandler{T}"/>, not from this class.
/// </summary>
public abstract class DrakkarHandlerBase
{
    private protected DrakkarHandlerBase()
    {
    }

    /// <summary>
    /// The worker's key/value cache (<c>cache.*</c>): usable from <c>OnReady</c> on, in every hook and periodic method.
    /// With <c>cache.enabled: false</c> (the default) reads miss and writes are dropped.
    /// </summary>
    public DrakkarCache Cache { get; internal set; } = DrakkarCache.Disabled;

    /// <summary>Runs first; may change the configuration before anything starts.</summary>
    public virtual ValueTask<DrakkarConfig> OnStartup(DrakkarConfig config) => ValueTask.FromResult(config);

    /// <summary>Runs after the sinks connect and before the first poll; gets the first PostgreSQL sink's data source, or null.</summary>
    public virtual ValueTask OnReady(DrakkarConfig config, NpgsqlDataSource? postgres) => ValueTask.CompletedTask;

    /// <summary>A task exited with code 0 (or was precomputed). Throwing makes the task a final failure.</summary>
    public virtual ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result) => ValueTask.FromResult<CollectResult?>(null);

    /// <summary>
    /// Every task serving a message is final. Fires exactly once per message. A typed handler overrides the
    /// <see cref="DrakkarHandler{T}.OnMessageComplete(MessageGroup{T})"/> overload instead (this one is sealed there).
    /// </summary>
    public virtual ValueTask<CollectResult?> OnMessageComplete(MessageGroup group) => ValueTask.FromResult<CollectResult?>(null);

    /// <summary>Every task of a window is final. Fires once per window that produced tasks.</summary>
    public virtual ValueTask<CollectResult?> OnWindowComplete(IReadOnlyList<ExecutorResult> results, IReadOnlyList<SourceMessage> messages) =>
        ValueTask.FromResult<CollectResult?>(null);

    /// <summary>A task attempt failed. Default: <see cref="ErrorDecision.Skip"/> (the failure is final).</summary>
    public virtual ValueTask<ErrorDecision> OnError(ExecutorTask task, ExecutorError error) => ValueTask.FromResult(ErrorDecision.Skip);

    /// <summary>A sink failed to take payloads. Default: <see cref="DeliveryAction.Dlq"/>.</summary>
    public virtual ValueTask<DeliveryAction> OnDeliveryError(DeliveryError error) => ValueTask.FromResult(DeliveryAction.Dlq);

    public virtual ValueTask OnAssign(IReadOnlyList<PartitionId> partitions) => ValueTask.CompletedTask;

    public virtual ValueTask OnRevoke(IReadOnlyList<PartitionId> partitions) => ValueTask.CompletedTask;

    /// <summary>A short label for a message in logs; default <c>topic[partition]@offset</c>.</summary>
    public virtual string MessageLabel(SourceMessage message) => message.ToString();

    /// <summary>Lower runs first (FIFO on ties). Default: the task's lowest source offset.</summary>
    public virtual long TaskPriority(ExecutorTask task)
    {
        if (task.SourceOffsets.Count == 0) return long.MaxValue;
        var lowest = long.MaxValue;
        foreach (var offset in task.SourceOffsets) lowest = Math.Min(lowest, offset);
        return lowest;
    }

    /// <summary>For a hook with nothing to await: <c>return Tasks(tasks);</c> from <c>Arrange</c>.</summary>
    protected static ValueTask<IReadOnlyList<ExecutorTask>> Tasks(IReadOnlyList<ExecutorTask> tasks) => ValueTask.FromResult(tasks);

    /// <summary>For a hook with nothing to await: <c>return Collect(new CollectResult { … });</c> (or <c>Collect(null)</c>).</summary>
    protected static ValueTask<CollectResult?> Collect(CollectResult? payloads) => ValueTask.FromResult(payloads);

    /// <summary>For an <c>OnError</c> with nothing to await: <c>=> Decide(ErrorDecision.Retry);</c></summary>
    protected static ValueTask<ErrorDecision> Decide(ErrorDecision decision) => ValueTask.FromResult(decision);

    /// <summary>For an <c>OnDeliveryError</c> with nothing to await: <c>=> Decide(DeliveryAction.Retry);</c></summary>
    protected static ValueTask<DeliveryAction> Decide(DeliveryAction action) => ValueTask.FromResult(action);

    /// <summary>The sink instances this handler routes to (generated from <see cref="SinkAttribute"/>).</summary>
    protected internal virtual IReadOnlyList<SinkDeclaration> DeclaredSinks => [];

    /// <summary>The handler's periodic methods (generated from <see cref="PeriodicAttribute"/>).</summary>
    protected internal virtual IReadOnlyList<PeriodicRegistration> PeriodicMethods => [];

    /// <summary>Turns a consumed record into the message type the handler arranges.</summary>
    internal abstract SourceMessage CreateMessage(string topic, int partition, long offset, byte[]? key, byte[]? value,
        DateTimeOffset timestamp, IReadOnlyList<KeyValuePair<string, byte[]>> headers);

    internal abstract ValueTask<IReadOnlyList<ExecutorTask>> ArrangeCore(IReadOnlyList<SourceMessage> messages, PendingContext pending);

    /// <summary>The group <c>OnMessageComplete</c> gets for <paramref name="message"/> (typed for a typed handler).</summary>
    internal virtual MessageGroup CreateGroup(SourceMessage message, IReadOnlyList<ExecutorTask> tasks, IReadOnlyList<ExecutorResult> results,
        IReadOnlyList<ExecutorError> errors, IReadOnlyList<string> replacedTaskIds, DateTimeOffset startedAt, DateTimeOffset finishedAt) =>
        new(message, tasks, results, errors, replacedTaskIds, startedAt, finishedAt);
}

/// <summary>A handler over raw messages (no decoding).</summary>
public abstract class DrakkarHandler : DrakkarHandlerBase
{
    /// <summary>Turns a window of messages into tasks. Messages no task lists complete right away.</summary>
    public abstract ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending);

    internal sealed override SourceMessage CreateMessage(string topic, int partition, long offset, byte[]? key, byte[]? value,
        DateTimeOffset timestamp, IReadOnlyList<KeyValuePair<string, byte[]>> headers) =>
        new()
        {
            Topic = topic, Partition = partition, Offset = offset, Key = key, Value = value ?? [],
            Timestamp = timestamp, Headers = headers,
        };

    internal sealed override ValueTask<IReadOnlyList<ExecutorTask>> ArrangeCore(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
        Arrange(messages, pending);
}

/// <summary>A handler whose message values are decoded from UTF-8 JSON as <typeparamref name="T"/> before <c>Arrange</c>.</summary>
public abstract class DrakkarHandler<T> : DrakkarHandlerBase where T : class, IPayload<T>
{
    /// <summary>Turns a window of messages into tasks. A message whose value failed to decode has a null Payload.</summary>
    public abstract ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<T>> messages, PendingContext pending);

    internal sealed override SourceMessage CreateMessage(string topic, int partition, long offset, byte[]? key, byte[]? value,
        DateTimeOffset timestamp, IReadOnlyList<KeyValuePair<string, byte[]>> headers)
    {
        var bytes = value ?? [];
        var (payload, error) = PayloadDecoder.Decode<T>(bytes);
        return new SourceMessage<T>
        {
            Topic = topic, Partition = partition, Offset = offset, Key = key, Value = bytes,
            Timestamp = timestamp, Headers = headers, Payload = payload, DecodeError = error,
        };
    }

    internal sealed override ValueTask<IReadOnlyList<ExecutorTask>> ArrangeCore(IReadOnlyList<SourceMessage> messages, PendingContext pending)
    {
        var typed = new SourceMessage<T>[messages.Count];
        for (var i = 0; i < typed.Length; i++) typed[i] = (SourceMessage<T>)messages[i];
        return Arrange(typed, pending);
    }

    /// <summary>
    /// Calls the typed <see cref="OnMessageComplete(MessageGroup{T})"/>, the one a typed handler overrides. Sealed: when
    /// a handler could override both, the untyped one silently replaced the typed one and its payloads were never
    /// returned; now overriding this one in a typed handler is a build error (CS0239).
    /// </summary>
    public sealed override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group) => OnMessageComplete((MessageGroup<T>)group);

    /// <summary>Every task serving a message is final, with the message typed. Fires exactly once per message.</summary>
    public virtual ValueTask<CollectResult?> OnMessageComplete(MessageGroup<T> group) => ValueTask.FromResult<CollectResult?>(null);

    internal sealed override MessageGroup CreateGroup(SourceMessage message, IReadOnlyList<ExecutorTask> tasks, IReadOnlyList<ExecutorResult> results,
        IReadOnlyList<ExecutorError> errors, IReadOnlyList<string> replacedTaskIds, DateTimeOffset startedAt, DateTimeOffset finishedAt) =>
        new MessageGroup<T>((SourceMessage<T>)message, tasks, results, errors, replacedTaskIds, startedAt, finishedAt);
}
