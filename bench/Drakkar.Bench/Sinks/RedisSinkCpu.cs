using System.Diagnostics;
using System.Globalization;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Sinks;
using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Drakkar.Sinks;
using Drakkar.Sinks.Dlq;
using Drakkar.Sinks.Redis;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Bench.Sinks;

/// <summary>
/// The Redis sink's own cost per SET: payloads made up front, then delivered batch after batch against a local
/// redis-server, one stream, twice: by calling <see cref="RedisSink.DeliverAsync"/> directly (<c>sink</c>), and
/// through a <see cref="SinkManager"/> (<c>manager</c>: its queue, drainer, breaker, settling; what a worker pays
/// per batch on top of the sink). Per SET it reports this process's CPU time (less disturbed by a busy machine than
/// a rate, though not immune: take the lowest of several rounds), GC pause time, managed allocation and thread-pool
/// work items (hand-offs between threads); redis-server's CPU is its own and not counted. <c>--alloc-types</c> also
/// prints the types each path allocates most (sampled).
/// </summary>
internal static class RedisSinkCpu
{
    public static async Task<int> RunAsync(string[] args)
    {
        var payloads = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 250_000;
        var batches = args.Length > 1 ? args[1].Split(',').Select(b => int.Parse(b, CultureInfo.InvariantCulture)).ToArray() : [64, 1000];
        var rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
        using var allocations = args.Contains("--alloc-types") ? new Report.AllocationSampler() : null;

        using var redis = RedisServer.WithoutPersistence();
        var config = new RedisSinkConfig { Url = redis.Url, KeyPrefix = "bench:" };
        var sink = new RedisSink("cache", config, new SinkSecretMasker(), NullLogger.Instance);
        await sink.ConnectAsync(default);
        var managed = new RedisSink("cache", config, new SinkSecretMasker(), NullLogger.Instance);
        var manager = new SinkManager([managed], new NoDeadLetters(), new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance);
        await manager.StartAsync(default);
        var made = Enumerable.Range(0, payloads).Select(i => (SinkPayload)RedisPayload.Of($"r:{i}", Reading.Sample(i))).ToArray();
        try
        {
            foreach (var batch in batches)
            {
                foreach (var (path, deliver) in new (string, Func<SinkPayload[], int, Task>)[]
                         {
                             ("sink", (all, size) => DeliverAllAsync(sink, all, size)),
                             ("manager", (all, size) => DeliverAllAsync(manager, all, size)),
                         })
                {
                    await deliver(made, batch); // warm-up: JIT tiers, the connection's buffers
                    allocations?.Start();
                    for (var round = 0; round < rounds; round++) Measure(path, batch, payloads, await TimedAsync(() => deliver(made, batch)));
                    foreach (var (type, share) in allocations?.Stop(12) ?? [])
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {share,6:P1}  {type}"));
                }
            }
        }
        finally
        {
            await sink.CloseAsync(default);
            await manager.CloseAsync();
        }
        return 0;
    }

    private readonly record struct Cost(TimeSpan Cpu, TimeSpan GcPauses, long Bytes, long WorkItems, TimeSpan Wall);

    private static async Task<Cost> TimedAsync(Func<Task> run)
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        var workItems = ThreadPool.CompletedWorkItemCount;
        var paused = GC.GetTotalPauseDuration();
        var started = Stopwatch.GetTimestamp();
        await run();
        return new Cost(Process.GetCurrentProcess().TotalProcessorTime - cpu, GC.GetTotalPauseDuration() - paused,
            GC.GetTotalAllocatedBytes(precise: true) - allocated, ThreadPool.CompletedWorkItemCount - workItems, Stopwatch.GetElapsedTime(started));
    }

    private static void Measure(string path, int batch, int payloads, Cost cost) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{path,-7} batch {batch,5}: {cost.Cpu.TotalMicroseconds / payloads,6:F2} µs CPU/SET (GC pauses {cost.GcPauses.TotalMicroseconds / payloads,4:F2})  {(double)cost.Bytes / payloads,7:F0} B allocated/SET  {(double)cost.WorkItems / payloads,5:F2} thread-pool items/SET  {payloads / cost.Wall.TotalSeconds,9:N0} SETs/s"));

    private static async Task DeliverAllAsync(RedisSink sink, SinkPayload[] payloads, int batchSize)
    {
        for (var first = 0; first < payloads.Length; first += batchSize)
        {
            var batch = new SinkBatch("bench-source", 0, new ArraySegment<SinkPayload>(payloads, first, Math.Min(batchSize, payloads.Length - first)));
            await sink.DeliverAsync(batch, default);
            for (var i = 0; i < batch.Count; i++)
                if (batch.FailureOf(i) is { } failure) throw failure;
        }
    }

    /// <summary>One hook result per batch, as the pipeline hands them over, settled before the next.</summary>
    private static async Task DeliverAllAsync(SinkManager manager, SinkPayload[] payloads, int batchSize)
    {
        for (var first = 0; first < payloads.Length; first += batchSize)
        {
            var result = new CollectResult();
            for (var i = first; i < Math.Min(first + batchSize, payloads.Length); i++) result.Redis.Add((RedisPayload)payloads[i]);
            var origin = new DeliveryOrigin("bench-source", 0, [new SourceMessage { Topic = "bench-source", Partition = 0, Offset = first }]);
            await manager.DeliverAsync(result, origin, default);
        }
    }

    /// <summary>No dead letter is expected: the harness fails if one is written.</summary>
    private sealed class NoDeadLetters : IDeadLetterQueue
    {
        public string Destination => "none";
        public IReadOnlyDictionary<(string Topic, int Partition), string> BlockedPartitions { get; } = new Dictionary<(string, int), string>();
        public ValueTask ConnectAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
        public ValueTask WriteAsync(DeadLetter letter, CancellationToken cancellationToken) =>
            throw new InvalidOperationException($"a dead letter in the harness: {letter.Error}");
        public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }
}
