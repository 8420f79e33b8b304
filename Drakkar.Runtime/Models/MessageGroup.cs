namespace Drakkar;

/// <summary>Everything that happened to one source message: the tasks that served it and how they ended.</summary>
public class MessageGroup
{
    public MessageGroup(SourceMessage message, IReadOnlyList<ExecutorTask> tasks, IReadOnlyList<ExecutorResult> results,
        IReadOnlyList<ExecutorError> errors, IReadOnlyList<string> replacedTaskIds, DateTimeOffset startedAt, DateTimeOffset finishedAt)
    {
        Message = message;
        Tasks = tasks;
        Results = results;
        Errors = errors;
        ReplacedTaskIds = replacedTaskIds;
        StartedAt = startedAt;
        FinishedAt = finishedAt;
    }

    public SourceMessage Message { get; }
    /// <summary>Every task that touched the message, including ones that were replaced.</summary>
    public IReadOnlyList<ExecutorTask> Tasks { get; }
    /// <summary>Final successful results.</summary>
    public IReadOnlyList<ExecutorResult> Results { get; }
    /// <summary>Final failures.</summary>
    public IReadOnlyList<ExecutorError> Errors { get; }
    /// <summary>Ids of tasks that were replaced by others through <c>OnError</c>.</summary>
    public IReadOnlyList<string> ReplacedTaskIds { get; }
    public DateTimeOffset StartedAt { get; }
    public DateTimeOffset FinishedAt { get; }

    public int Succeeded => Results.Count;
    public int Failed => Errors.Count;
    public int Replaced => ReplacedTaskIds.Count;
    public int Total => Tasks.Count;
    public bool AllSucceeded => Errors.Count == 0;
    public bool IsEmpty => Tasks.Count == 0;
    public TimeSpan Duration => FinishedAt - StartedAt;
}

/// <summary>
/// The <see cref="MessageGroup"/> a typed handler (<see cref="DrakkarHandler{T}"/>) gets: its message is the decoded
/// <see cref="SourceMessage{T}"/>.
/// </summary>
public sealed class MessageGroup<T> : MessageGroup where T : class
{
    public MessageGroup(SourceMessage<T> message, IReadOnlyList<ExecutorTask> tasks, IReadOnlyList<ExecutorResult> results,
        IReadOnlyList<ExecutorError> errors, IReadOnlyList<string> replacedTaskIds, DateTimeOffset startedAt, DateTimeOffset finishedAt)
        : base(message, tasks, results, errors, replacedTaskIds, startedAt, finishedAt)
    {
        Message = message;
    }

    /// <summary>The source message, with its decoded <see cref="SourceMessage{T}.Payload"/>.</summary>
    public new SourceMessage<T> Message { get; }
}
