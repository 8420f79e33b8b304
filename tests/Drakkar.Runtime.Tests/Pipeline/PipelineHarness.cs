using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Runtime.Tests.Pipeline;

/// <summary>One partition pipeline wired to test doubles, fed by hand.</summary>
internal sealed class PipelineHarness
{
    private long _nextOffset;

    public PipelineHarness(int windowSize = 100, int maxRetries = 3, long high = 1_000_000, long low = 0, long firstOffset = 0,
        RetryBackoff? retryBackoff = null)
    {
        _nextOffset = firstOffset;
        Load = new WorkerLoad(high, low);
        Pipeline = new PartitionPipeline("source", 0, Handler, Executor, Delivery, new PipelineSettings(windowSize, maxRetries, retryBackoff), Load,
            Metrics, NullLogger.Instance);
        Pipeline.Start();
    }

    public ScriptedHandler Handler { get; } = new();
    public ScriptedExecutor Executor { get; } = new();
    public RecordingDelivery Delivery { get; } = new();
    public DrakkarMetrics Metrics { get; } = new();
    public WorkerLoad Load { get; }
    public PartitionPipeline Pipeline { get; }

    public void Feed(int count)
    {
        for (var i = 0; i < count; i++)
        {
            var offset = _nextOffset++;
            Pipeline.Enqueue(new SourceMessage { Topic = "source", Partition = 0, Offset = offset, Value = [(byte)'x'] });
        }
    }

    /// <summary>The committable offset (one past the done prefix), or -1.</summary>
    public long Watermark => Pipeline.CommitCandidate() ?? -1;

    public async Task WaitForWatermark(long expected, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Watermark != expected)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{what}: watermark is {Watermark}, expected {expected}");
            await Task.Delay(5);
        }
    }

    public static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{what} did not happen within 10s");
            await Task.Delay(5);
        }
    }
}
