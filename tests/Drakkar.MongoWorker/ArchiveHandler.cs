namespace Drakkar.MongoWorker;

[Payload]
public sealed partial record Reading(string Id, int Count, DateTimeOffset At, IReadOnlyList<string> Tags);

/// <summary>Archives each reading as a document in collection <c>readings</c>; there is nothing to execute.</summary>
[Sink(SinkKind.Mongo, "archive")]
public sealed partial class ArchiveHandler : DrakkarHandler<Reading>
{
    public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<Reading>> messages, PendingContext pending) =>
        ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);

    public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup<Reading> group) =>
        ValueTask.FromResult(group.Message.Payload is { } reading
            ? new CollectResult { Mongo = { MongoPayload.Of("readings", reading) } }
            : null);
}
