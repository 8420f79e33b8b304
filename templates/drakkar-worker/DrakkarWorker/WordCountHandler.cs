using Drakkar;

namespace DrakkarWorker;

/// <summary>
/// Counts the words of each document with <c>wc -w</c> (the executor binary, <c>executor.binary_path</c>) and appends
/// one <see cref="WordCount"/> JSON line per document to <c>counts.jsonl</c> in the filesystem sink <c>results</c>;
/// a message that is not a document gets an <see cref="Undecodable"/> line in <c>undecodable.jsonl</c> instead.
/// Replace the executor and the payloads with your own; the generator checks at build time that every sink this
/// handler routes to is declared with <see cref="SinkAttribute"/>.
/// </summary>
[Sink(SinkKind.Filesystem, "results")]
public sealed partial class WordCountHandler : DrakkarHandler<Document>
{
    /// <summary>The JSONL file, relative to the <c>results</c> sink's base_path.</summary>
    public const string CountsFile = "counts.jsonl";

    /// <summary>The JSONL file of the messages that were not documents, with why.</summary>
    public const string UndecodableFile = "undecodable.jsonl";

    public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<Document>> messages, PendingContext pending)
    {
        var tasks = new List<ExecutorTask>(messages.Count);
        foreach (var message in messages)
        {
            // An undecodable message gets no task; OnMessageComplete keeps a record of it.
            if (message.Payload is not { } document) continue;
            tasks.Add(new ExecutorTask(TaskId.New("count"))
            {
                Args = ["-w"],
                Stdin = document.Text,
                SourceOffsets = [message.Offset],
                State = document,                 // for OnTaskComplete; never sent to the process
            });
        }
        return Tasks(tasks);
    }

    public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
    {
        var document = result.Task.StateAs<Document>();
        var count = new WordCount(document.Id, int.Parse(result.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture));
        return Collect(new CollectResult { Files = { FilePayload.Of(CountsFile, count, sink: "results") } });
    }

    /// <summary>
    /// Once per message, after its tasks: a message that could not be read as a <see cref="Document"/> (invalid JSON,
    /// a missing member, an empty value) is committed like any other, so it is written down here, with the reason,
    /// rather than dropped without a trace. Send it to a Kafka topic of your own instead if you prefer.
    /// </summary>
    public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup<Document> group)
    {
        var message = group.Message;
        if (message.Payload is not null) return Collect(null);
        var undecodable = new Undecodable(message.Topic, message.Partition, message.Offset, message.DecodeError ?? "no value");
        return Collect(new CollectResult { Files = { FilePayload.Of(UndecodableFile, undecodable, sink: "results") } });
    }
}
