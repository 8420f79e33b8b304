using System.Collections.Concurrent;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>
/// A handler that makes one task per message (a real <c>/bin/echo</c> run, or a precomputed result) and records
/// every settled message as (partition, offset).
/// </summary>
internal sealed class RecordingHandler(bool realProcesses) : DrakkarHandler
{
    public ConcurrentDictionary<(int Partition, long Offset), int> Settled { get; } = new();
    public ConcurrentDictionary<(int Partition, long Offset), string> Outputs { get; } = new();

    /// <summary>Awaited by every Arrange call (lets a test hold the pipeline while input piles up).</summary>
    public Func<Task> BeforeArrange { get; set; } = () => Task.CompletedTask;

    public override async ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
    {
        await BeforeArrange();
        return [.. messages.Select(m => new ExecutorTask(TaskId.New("rec"))
        {
            Args = realProcesses ? [$"{m.Partition}:{m.Offset}"] : [],
            BinaryPath = realProcesses ? "/bin/echo" : null,
            Precomputed = realProcesses ? null : new PrecomputedResult($"{m.Partition}:{m.Offset}\n"),
            SourceOffsets = [m.Offset],
        })];
    }

    public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
    {
        var parts = result.Stdout.Trim().Split(':');
        Outputs[(int.Parse(parts[0]), long.Parse(parts[1]))] = result.Stdout;
        return ValueTask.FromResult<CollectResult?>(null);
    }

    public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group)
    {
        Settled.AddOrUpdate((group.Message.Partition, group.Message.Offset), 1, (_, n) => n + 1);
        return ValueTask.FromResult<CollectResult?>(null);
    }
}
