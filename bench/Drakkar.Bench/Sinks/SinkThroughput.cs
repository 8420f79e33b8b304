using System.Diagnostics;
using System.Globalization;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Sinks;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Drakkar.Sinks;
using Drakkar.Sinks.Dlq;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Drakkar.Bench.Sinks;

/// <summary>
/// Delivered payloads per second for each sink kind, through the real <see cref="SinkManager"/> against the same
/// local servers the integration tests use. Two shapes: windows of 100 payloads from 4 partitions at once (the
/// throughput case) and single payloads one after another (the latency-bound case).
/// </summary>
internal static class SinkThroughput
{
    private const int Partitions = 4;

    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 3.0;
        using var kafka = new KafkaBroker();
        using var postgres = new PostgresServer();
        using var redis = RedisServer.WithoutPersistence();
        using var http = new HttpReceiver();
        using var mongo = new MongoWireServer();
        var files = Directory.CreateTempSubdirectory("drakkar-bench-files-").FullName;
        try
        {
            var db = postgres.CreateDatabase("bench");
            await using (var connection = new NpgsqlConnection(db))
            {
                await connection.OpenAsync();
                await using var create = new NpgsqlCommand("CREATE TABLE readings (id text, count integer, score double precision, note text, tags jsonb)", connection);
                await create.ExecuteNonQueryAsync();
            }
            var topic = kafka.CreateTopic("bench-results", partitions: Partitions);
            var config = new DrakkarConfig();
            config.Kafka.Brokers = kafka.BootstrapServers;
            config.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = topic };
            config.Sinks.Postgres["insert"] = new PostgresSinkConfig { Dsn = db };
            config.Sinks.Postgres["bulk"] = new PostgresSinkConfig { Dsn = db, Mode = PostgresWriteMode.Bulk };
            config.Sinks.Mongo["archive"] = new MongoSinkConfig { Uri = mongo.Uri(), Database = "bench" };
            config.Sinks.Redis["cache"] = new RedisSinkConfig { Url = redis.Url, KeyPrefix = "bench:" };
            // HttpListener answers in two writes and so stalls on delayed ACKs (~40 ms a request); point
            // DRAKKAR_BENCH_HTTP_URL at a faster receiver to measure the sink rather than the fixture.
            var httpUrl = Environment.GetEnvironmentVariable("DRAKKAR_BENCH_HTTP_URL") is { Length: > 0 } external ? external : http.Url + "bench";
            config.Sinks.Http["webhook"] = new HttpSinkConfig { Url = httpUrl };
            config.Sinks.Filesystem["files"] = new FileSinkConfig { BasePath = files };
            var manager = SinkManager.Create(config, [], new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance,
                new SinkRegistry().AddMongoDB(), sourceTopic: kafka.CreateTopic("bench-source"));
            await manager.StartAsync(default);

            (string Label, Func<int, SinkPayload> Make)[] kinds =
            [
                ("kafka", i => KafkaPayload.Of(Reading.Sample(i), System.Text.Encoding.UTF8.GetBytes($"k{i}"))),
                ("postgres insert", i => PostgresPayload.Of("readings", Reading.Sample(i), "insert")),
                ("postgres bulk", i => PostgresPayload.Of("readings", Reading.Sample(i), "bulk")),
                ("mongo (driver, test server)", i => MongoPayload.Of("readings", Reading.Sample(i))),
                ("redis", i => RedisPayload.Of($"r:{i % 100_000}", Reading.Sample(i), TimeSpan.FromMinutes(5))),
                ("http", i => HttpPayload.Of(Reading.Sample(i))),
                ("filesystem", i => FilePayload.Of($"part-{i % Partitions}.jsonl", Reading.Sample(i))),
            ];

            Console.WriteLine($"sink throughput, {seconds:0.#}s per case, payload = Reading (5 members, ~90 bytes of JSON)");
            Console.WriteLine($"{"sink",-26} {"batch 100 x 4 partitions",26} {"batch 1, sequential",22}");
            foreach (var (label, make) in kinds)
            {
                var batched = await MeasureAsync(manager, make, batchSize: 100, partitions: Partitions, seconds);
                var single = await MeasureAsync(manager, make, batchSize: 1, partitions: 1, seconds);
                Console.WriteLine($"{label,-26} {batched,20:N0} p/s {single,16:N0} p/s");
            }
            var failures = manager.Stats.Where(s => s.Errors > 0 || s.DeadLettered > 0).ToArray();
            foreach (var failure in failures) Console.WriteLine($"warning: {failure.Kind}/{failure.Name} had {failure.Errors} errors: {failure.LastError}");
            await manager.CloseAsync();
            return failures.Length == 0 ? 0 : 1;
        }
        finally
        {
            Directory.Delete(files, recursive: true);
        }
    }

    private static async Task<double> MeasureAsync(SinkManager manager, Func<int, SinkPayload> make, int batchSize, int partitions, double seconds)
    {
        // Warm-up: connections, JIT, prepared paths.
        await DeliverBatchAsync(manager, make, 0, batchSize, 0);
        var delivered = 0L;
        var deadline = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, partitions).Select(async partition =>
        {
            var next = partition * 10_000_000;
            while (Stopwatch.GetTimestamp() < deadline)
            {
                await DeliverBatchAsync(manager, make, next, batchSize, partition);
                next += batchSize;
                Interlocked.Add(ref delivered, batchSize);
            }
        }));
        return delivered / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    private static ValueTask DeliverBatchAsync(SinkManager manager, Func<int, SinkPayload> make, int first, int count, int partition)
    {
        var result = new CollectResult();
        for (var i = first; i < first + count; i++)
        {
            switch (make(i))
            {
                case KafkaPayload p: result.Kafka.Add(p); break;
                case PostgresPayload p: result.Postgres.Add(p); break;
                case MongoPayload p: result.Mongo.Add(p); break;
                case RedisPayload p: result.Redis.Add(p); break;
                case HttpPayload p: result.Http.Add(p); break;
                case FilePayload p: result.Files.Add(p); break;
            }
        }
        var origin = new DeliveryOrigin("bench-source", partition, [new SourceMessage { Topic = "bench-source", Partition = partition, Offset = first }]);
        return manager.DeliverAsync(result, origin, default);
    }
}
