using Drakkar;

namespace DrakkarWorker;

/// <summary>
/// Counts the words of each document with <c>wc -w</c> (the executor binary, <c>executor.binary_path</c>) and appends
/// one <see cref="WordCount"/> JSON line per document to <c>counts.jsonl</c> in the filesystem sink <c>results</c>.
/// Replace the executor and the payloads with your own; the generator checks at build time that every sink this
/// handler routes to is declared with <see cref="SinkAttribute"/>.
/// </summary>
[Sink(SinkKind.Filesystem, "results")]
public sealed partial class WordCountHandler : DrakkarHandler<Document>
{
    /// <summary>The JSONL file, relative to the <c>results</c> sink's base_path.</summary>
    public const string CountsFile = "counts.jsonl";

    public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<Document>> messages, PendingContext pending)
    {
        var tasks = new List<ExecutorTask>(messages.Count);
        foreach (var message in messages)
        {
            // An undecodable message gets no task: it completes and is committed with nothing delivered.
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
}
