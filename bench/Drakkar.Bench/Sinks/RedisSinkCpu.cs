using System.Diagnostics;
using System.Globalization;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Sinks;
using Drakkar.Sinks;
using Drakkar.Sinks.Redis;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Bench.Sinks;

/// <summary>
/// The Redis sink's own cost per SET: payloads made up front, then <see cref="RedisSink.DeliverAsync"/> called batch
/// after batch against a local redis-server, one stream. Per SET it reports this process's CPU time (less disturbed
/// by a busy machine than a rate, though not immune: take the lowest of several rounds), GC pause time, managed
/// allocation and thread-pool work items (hand-offs between threads); redis-server's CPU is its own and not counted.
/// </summary>
internal static class RedisSinkCpu
{
    public static async Task<int> RunAsync(string[] args)
    {
        var payloads = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 250_000;
        var batches = args.Length > 1 ? args[1].Split(',').Select(b => int.Parse(b, CultureInfo.InvariantCulture)).ToArray() : [64, 1000];
        var rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;

        using var redis = new RedisServer();
        var sink = new RedisSink("cache", new RedisSinkConfig { Url = redis.Url, KeyPrefix = "bench:" }, new SinkSecretMasker(), NullLogger.Instance);
        await sink.ConnectAsync(default);
        var made = Enumerable.Range(0, payloads).Select(i => (SinkPayload)RedisPayload.Of($"r:{i}", Reading.Sample(i))).ToArray();
        try
        {
            foreach (var batch in batches)
            {
                await DeliverAllAsync(sink, made, batch); // warm-up: JIT tiers, the connection's buffers
                for (var round = 0; round < rounds; round++)
                {
                    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                    var allocated = GC.GetTotalAllocatedBytes(precise: true);
                    var workItems = ThreadPool.CompletedWorkItemCount;
                    var paused = GC.GetTotalPauseDuration();
                    var started = Stopwatch.GetTimestamp();
                    await DeliverAllAsync(sink, made, batch);
                    var wall = Stopwatch.GetElapsedTime(started);
                    var used = Process.GetCurrentProcess().TotalProcessorTime - cpu;
                    var bytes = GC.GetTotalAllocatedBytes(precise: true) - allocated;
                    var hops = ThreadPool.CompletedWorkItemCount - workItems;
                    var gc = GC.GetTotalPauseDuration() - paused;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"batch {batch,5}: {used.TotalMicroseconds / payloads,6:F2} µs CPU/SET (GC pauses {gc.TotalMicroseconds / payloads,4:F2})  {(double)bytes / payloads,7:F0} B allocated/SET  {(double)hops / payloads,5:F2} thread-pool items/SET  {payloads / wall.TotalSeconds,9:N0} SETs/s"));
                }
            }
        }
        finally
        {
            await sink.CloseAsync(default);
        }
        return 0;
    }

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
}
