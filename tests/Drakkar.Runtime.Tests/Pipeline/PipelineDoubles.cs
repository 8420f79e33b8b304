using System.Collections.Concurrent;
using Drakkar.Execution;
using Drakkar.Pipeline;

namespace Drakkar.Runtime.Tests.Pipeline;

/// <summary>A small payload type for hooks to return.</summary>
[Payload]
public sealed partial record Note(string Text);

/// <summary>
/// Stands in for the executor pool in pipeline-logic tests: tasks succeed at once (stdout = task id) unless a
/// script says otherwise or the test holds them to force a completion order.
/// </summary>
internal sealed class ScriptedExecutor : ITaskExecutor
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _holds = new();

    public ConcurrentQueue<(string TaskId, int Attempt)> Attempts { get; } = new();

    /// <summary>Decides an attempt's outcome; null means success.</summary>
    public Func<ExecutorTask, int, ExecutorError?> Script { get; set; } = (_, _) => null;

    public void Hold(string taskId) => _holds[taskId] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release(string taskId) => _holds[taskId].TrySetResult();

    public async ValueTask<ExecutorOutcome> ExecuteAsync(ExecutorTask task, long priority, int attempt, CancellationToken cancellationToken)
    {
        Attempts.Enqueue((task.TaskId, attempt));
        if (_holds.TryGetValue(task.TaskId, out var hold)) await hold.Task.WaitAsync(cancellationToken);
        var error = Script(task, attempt);
        return error is null
            ? ExecutorOutcome.Success(new ExecutorResult(task, 0, task.TaskId, "", TimeSpan.Zero, 4242))
            : ExecutorOutcome.Failure(error);
    }
}

/// <summary>Records every settled delivery and dead letter.</summary>
internal sealed class RecordingDelivery : IPayloadDelivery
{
    public ConcurrentQueue<(CollectResult Result, DeliveryOrigin Origin)> Delivered { get; } = new();
    public ConcurrentQueue<(DeliveryOrigin Origin, string Error)> DeadLetters { get; } = new();

    public ValueTask DeliverAsync(CollectResult result, DeliveryOrigin origin, CancellationToken cancellationToken)
    {
        Delivered.Enqueue((result, origin));
        return ValueTask.CompletedTask;
    }

    /// <summary>When set, a dead letter is stored only once this task completes (a DLQ that is slow or down).</summary>
    public Task? DeadLetterGate { get; set; }

    public async ValueTask DeadLetterAsync(DeliveryOrigin origin, string error, CancellationToken cancellationToken)
    {
        if (DeadLetterGate is { } gate) await gate.WaitAsync(cancellationToken);
        DeadLetters.Enqueue((origin, error));
    }

    public void Submit(CollectResult result, DeliveryOrigin origin, CancellationToken abandoned, Action<bool, object?> settled, object? state)
    {
        Delivered.Enqueue((result, origin));
        settled(true, state);
    }

    public IReadOnlyDictionary<(string Topic, int Partition), string> BlockedPartitions { get; } =
        new Dictionary<(string Topic, int Partition), string>();

    public long InFlightPayloads => 0;

    public bool HoldingForOutage { get; set; }

    public long MaxInFlightPayloads => long.MaxValue;

    public Task FlushAsync(string topic, int partition, CancellationToken cancellationToken) => Task.CompletedTask;

    public Drakkar.Sinks.Kafka.KafkaTransaction? Transaction => null;

    public void Discard(string topic, int partition)
    {
    }
}

/// <summary>A raw-message handler whose hooks are delegates, counting every hook call.</summary>
internal sealed class ScriptedHandler : DrakkarHandler
{
    public Func<IReadOnlyList<SourceMessage>, PendingContext, IReadOnlyList<ExecutorTask>> ArrangeWith { get; set; } =
        (messages, _) => [.. messages.Select(m => new ExecutorTask(TaskId.New("t")) { SourceOffsets = [m.Offset] })];

    public Func<ExecutorTask, ExecutorError, ErrorDecision> OnErrorWith { get; set; } = (_, _) => ErrorDecision.Skip;
    public Func<ExecutorResult, CollectResult?> OnTaskCompleteWith { get; set; } = _ => null;
    public Func<MessageGroup, CollectResult?> OnMessageCompleteWith { get; set; } = _ => null;

    public ConcurrentDictionary<long, int> MessageCompletions { get; } = new();
    public ConcurrentQueue<MessageGroup> Groups { get; } = new();
    public ConcurrentQueue<IReadOnlyList<SourceMessage>> CompletedWindows { get; } = new();
    public ConcurrentQueue<IReadOnlyList<SourceMessage>> ArrangedWindows { get; } = new();

    public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
    {
        ArrangedWindows.Enqueue(messages);
        return ValueTask.FromResult(ArrangeWith(messages, pending));
    }

    public override ValueTask<ErrorDecision> OnError(ExecutorTask task, ExecutorError error) => ValueTask.FromResult(OnErrorWith(task, error));

    public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result) => ValueTask.FromResult(OnTaskCompleteWith(result));

    public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group)
    {
        MessageCompletions.AddOrUpdate(group.Message.Offset, 1, (_, n) => n + 1);
        Groups.Enqueue(group);
        return ValueTask.FromResult(OnMessageCompleteWith(group));
    }

    public override ValueTask<CollectResult?> OnWindowComplete(IReadOnlyList<ExecutorResult> results, IReadOnlyList<SourceMessage> messages)
    {
        CompletedWindows.Enqueue(messages);
        return ValueTask.FromResult<CollectResult?>(null);
    }
}
