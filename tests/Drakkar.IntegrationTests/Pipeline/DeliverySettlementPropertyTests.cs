using System.Collections.Concurrent;
using Drakkar.Execution;
using Drakkar.IntegrationTests.Sinks;
using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Drakkar.Sinks;
using Drakkar.Sinks.Dlq;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>
/// Real partition pipelines feeding one real <see cref="SinkManager"/> whose sink is slow at random, throws whole
/// batches and refuses single payloads: whatever happens, a partition's commit candidate never passes a message
/// whose payloads are not all delivered or dead-lettered, and in the end everything is settled and committable.
/// </summary>
public sealed class DeliverySettlementPropertyTests
{
    private const int Partitions = 4;
    private const int PerPartition = 250;

    /// <summary>One task per message; its task hook emits a payload for even offsets, its message hook always one.</summary>
    private sealed class EmittingHandler : DrakkarHandler
    {
        /// <summary>The payload ids each message's hooks emitted.</summary>
        public ConcurrentDictionary<(int Partition, long Offset), ConcurrentQueue<string>> Emitted { get; } = new();

        /// <summary>Messages whose message hook ran: nothing more is emitted for them.</summary>
        public ConcurrentDictionary<(int Partition, long Offset), bool> Finalized { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("prop"))
            {
                Precomputed = new PrecomputedResult($"{m.Partition}:{m.Offset}"),
                SourceOffsets = [m.Offset],
            })]);

        public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
        {
            var parts = result.Stdout.Split(':');
            var (partition, offset) = (int.Parse(parts[0]), long.Parse(parts[1]));
            return ValueTask.FromResult(offset % 2 == 0 ? Emit(partition, offset, "t") : null);
        }

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group)
        {
            var result = Emit(group.Message.Partition, group.Message.Offset, "m");
            Finalized[(group.Message.Partition, group.Message.Offset)] = true;
            return ValueTask.FromResult<CollectResult?>(result);
        }

        // One payload per hook call, so a hook call's group and its payload settle together.
        private CollectResult Emit(int partition, long offset, string hook)
        {
            var id = $"{partition}:{offset}:{hook}";
            Emitted.GetOrAdd((partition, offset), _ => new ConcurrentQueue<string>()).Enqueue(id);
            return new CollectResult { Http = { HttpPayload.Of(Reading.Sample((int)offset) with { Id = id }) } };
        }
    }

    /// <summary>Records the payloads of every dead letter as settled before the engine hears the write succeeded.</summary>
    private sealed class TrackingDlq(ConcurrentDictionary<string, string> settled) : IDeadLetterQueue
    {
        public IReadOnlyDictionary<(string Topic, int Partition), string> BlockedPartitions { get; } =
            new Dictionary<(string Topic, int Partition), string>();

        public ConcurrentQueue<DeadLetter> Letters { get; } = new();
        public string Destination => "memory";
        public ValueTask ConnectAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
        public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask WriteAsync(DeadLetter letter, CancellationToken cancellationToken)
        {
            foreach (var payload in letter.Payloads) settled.TryAdd(((Reading)payload.Data.Value).Id, "dead-lettered");
            Letters.Enqueue(letter);
            return ValueTask.CompletedTask;
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(20260611)]
    public async Task No_commit_candidate_ever_passes_an_unsettled_message_under_random_latency_and_failures(int seed)
    {
        var random = new Random(seed);
        int Next(int max) { lock (random) return random.Next(max); }
        var settled = new ConcurrentDictionary<string, string>();
        var thrown = 0;
        var refused = 0;
        var sink = new ScriptedSink("http", "hook")
        {
            Behavior = async (batch, _) =>
            {
                await Task.Delay(Next(21));
                if (Next(10) == 0)
                {
                    Interlocked.Increment(ref thrown);
                    throw new IOException("connection reset by peer");
                }
                for (var i = 0; i < batch.Count; i++)
                {
                    if (Next(20) == 0)
                    {
                        Interlocked.Increment(ref refused);
                        batch.Fail(i, new InvalidOperationException("HTTP 422 for this payload"));
                    }
                    else
                    {
                        settled.TryAdd(((Reading)batch.Payloads[i].Data.Value).Id, "delivered");
                    }
                }
            },
        };
        var dlq = new TrackingDlq(settled);
        var manager = new SinkManager([sink], dlq, new SinkManagerOptions
        {
            OnDeliveryError = e => ValueTask.FromResult(e.Attempt == 1 ? DeliveryAction.Retry : DeliveryAction.Dlq),
            MaxRetries = 3,
            CircuitBreaker = new CircuitBreakerConfig { FailureThreshold = 3, CooldownSeconds = 0.05 },
            Batching = (_, _) => new SinkBatching(16, TimeSpan.FromMilliseconds(2), Concurrency: 2),
        }, new DrakkarMetrics(), NullLoggerFactory.Instance);
        await manager.StartAsync(default);

        var handler = new EmittingHandler();
        await using var executor = new ExecutorPool(new ExecutorConfig { MaxExecutors = 2, TaskTimeoutSeconds = 30 });
        var metrics = new DrakkarMetrics();
        var pipelines = Enumerable.Range(0, Partitions).Select(p => new PartitionPipeline("source", p, handler, executor, manager,
            new PipelineSettings(WindowSize: 10, MaxRetries: 1), new WorkerLoad(long.MaxValue, 0), metrics, NullLogger.Instance)).ToArray();
        foreach (var pipeline in pipelines) pipeline.Start();

        bool IsSettled(int partition, long offset) =>
            handler.Finalized.ContainsKey((partition, offset))
            && handler.Emitted.TryGetValue((partition, offset), out var ids) && ids.All(settled.ContainsKey);

        // The settled prefix of each partition only grows, so each sample scans on from where the last one stopped.
        var settledPrefix = new long[Partitions];
        long FirstUnsettled(int partition)
        {
            while (settledPrefix[partition] < PerPartition && IsSettled(partition, settledPrefix[partition])) settledPrefix[partition]++;
            return settledPrefix[partition];
        }

        var violations = new List<string>();
        // Samples taken while some partition still had work to settle: the ones that can catch a violation.
        var samplesInFlight = 0;
        using var stop = new CancellationTokenSource();
        // A thread of its own, so a thread pool busy with other tests cannot starve the watch.
        var sampling = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var inFlight = false;
                for (var p = 0; p < Partitions; p++)
                {
                    // Candidate first: settlement read afterwards can only be further along.
                    var candidate = pipelines[p].CommitCandidate() ?? -1;
                    var firstUnsettled = FirstUnsettled(p);
                    if (candidate > firstUnsettled) violations.Add($"partition {p}: commit candidate {candidate} but offset {firstUnsettled} is unsettled");
                    inFlight |= firstUnsettled < PerPartition;
                }
                if (inFlight) samplesInFlight++;
                Thread.Sleep(1);
            }
        }) { IsBackground = true };
        sampling.Start();

        // Messages arrive in bursts, interleaved across partitions, while earlier ones are still delivering.
        for (var offset = 0; offset < PerPartition; offset += 25)
        {
            for (var p = 0; p < Partitions; p++)
                for (var o = offset; o < offset + 25; o++)
                    pipelines[p].Enqueue(new SourceMessage { Topic = "source", Partition = p, Offset = o, Value = "x"u8.ToArray() });
            await Task.Delay(Next(10));
        }

        var patience = TimeSpan.FromSeconds(20);
        var deadline = DateTime.UtcNow + patience;
        while (DateTime.UtcNow < deadline && pipelines.Any(p => (p.CommitCandidate() ?? -1) != PerPartition)) await Task.Delay(10);
        await stop.CancelAsync();
        sampling.Join();

        Assert.Empty(violations);
        Assert.Equal(Enumerable.Repeat((long)PerPartition, Partitions), pipelines.Select(p => p.CommitCandidate() ?? -1));
        for (var p = 0; p < Partitions; p++)
            for (long o = 0; o < PerPartition; o++)
                Assert.True(IsSettled(p, o), $"{p}@{o} is committable but not settled");
        Assert.Equal(0, manager.InFlightPayloads);
        // The run really exercised the failure paths and was watched throughout.
        Assert.True(thrown > 0 && refused > 0 && !dlq.Letters.IsEmpty, $"thrown {thrown}, refused {refused}, dead letters {dlq.Letters.Count}");
        // Counted while work was in flight (about 200 on an idle machine); ten mean the watch ran alongside the bursts.
        Assert.True(samplesInFlight >= 10, $"only {samplesInFlight} samples while work was in flight");
        await manager.CloseAsync();
    }
}
