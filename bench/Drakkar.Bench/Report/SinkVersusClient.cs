using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Sinks;
using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Drakkar.Sinks;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Drakkar.Bench.Report;

/// <summary>
/// Each sink through the real <see cref="SinkManager"/> against the client a user would otherwise call directly,
/// with the same rows, the same batch size and the same number of concurrent streams. Rates are payloads/s.
/// </summary>
internal sealed class SinkVersusClient(SinkManager manager, string postgresDsn, string kafkaBrokers, string kafkaTopic, int redisPort)
{
    public const int Batch = 100;
    public const int Streams = 4;
    public const int RedisPipeline = 64;

    /// <summary>The JSON every sink writes for a reading; its length is the value size handed to redis-benchmark.</summary>
    public static int ValueSize { get; } = PayloadData.Of(Reading.Sample(1)).ToJsonBytes().Length;

    public static async Task<SinkVersusClient> StartAsync(string postgresDsn, string kafkaBrokers, string kafkaTopic, string redisUrl, int redisPort)
    {
        await using (var connection = new NpgsqlConnection(postgresDsn))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE readings (id text, count integer, score double precision, note text, tags jsonb)", connection);
            await create.ExecuteNonQueryAsync();
        }
        var config = new DrakkarConfig();
        config.Kafka.Brokers = kafkaBrokers;
        config.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = kafkaTopic };
        config.Sinks.Postgres["insert"] = new PostgresSinkConfig { Dsn = postgresDsn };
        config.Sinks.Postgres["bulk"] = new PostgresSinkConfig { Dsn = postgresDsn, Mode = PostgresWriteMode.Bulk };
        config.Sinks.Redis["cache"] = new RedisSinkConfig { Url = redisUrl, KeyPrefix = "bench:" };
        var manager = SinkManager.Create(config, [], new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance, sourceTopic: "bench-source");
        await manager.StartAsync(default);
        return new SinkVersusClient(manager, postgresDsn, kafkaBrokers, kafkaTopic, redisPort);
    }

    public SinkManager Manager => manager;

    // ---- Drakkar side -------------------------------------------------------------------------------------

    public Task<double> SinkAsync(Func<int, SinkPayload> make, int payloads, int batch = Batch, int streams = Streams) =>
        TimeAsync(payloads, streams, batch, (first, count, stream) => DeliverAsync(make, first, count, stream));

    private async Task DeliverAsync(Func<int, SinkPayload> make, int first, int count, int stream)
    {
        var result = new CollectResult();
        for (var i = first; i < first + count; i++)
        {
            switch (make(i))
            {
                case KafkaPayload p: result.Kafka.Add(p); break;
                case PostgresPayload p: result.Postgres.Add(p); break;
                case RedisPayload p: result.Redis.Add(p); break;
            }
        }
        var origin = new DeliveryOrigin("bench-source", stream, [new SourceMessage { Topic = "bench-source", Partition = stream, Offset = first }]);
        await manager.DeliverAsync(result, origin, default);
    }

    // ---- baselines ----------------------------------------------------------------------------------------

    /// <summary>Npgsql binary COPY, one COPY per batch, one connection per stream.</summary>
    public async Task<double> CopyAsync(int rows)
    {
        var connections = new NpgsqlConnection[Streams];
        for (var i = 0; i < Streams; i++)
        {
            connections[i] = new NpgsqlConnection(postgresDsn);
            await connections[i].OpenAsync();
        }
        try
        {
            return await TimeAsync(rows, Streams, Batch, async (first, count, stream) =>
            {
                await using var writer = await connections[stream].BeginBinaryImportAsync("COPY readings (id, count, score, note, tags) FROM STDIN (FORMAT BINARY)");
                for (var i = first; i < first + count; i++)
                {
                    var r = Reading.Sample(i);
                    await writer.StartRowAsync();
                    await writer.WriteAsync(r.Id, NpgsqlDbType.Text);
                    await writer.WriteAsync(r.Count, NpgsqlDbType.Integer);
                    await writer.WriteAsync(r.Score, NpgsqlDbType.Double);
                    if (r.Note is null) await writer.WriteNullAsync();
                    else await writer.WriteAsync(r.Note, NpgsqlDbType.Text);
                    await writer.WriteAsync(JsonSerializer.Serialize(r.Tags, BenchJson.Default.IReadOnlyListString), NpgsqlDbType.Jsonb);
                }
                await writer.CompleteAsync();
            });
        }
        finally
        {
            foreach (var connection in connections) await connection.DisposeAsync();
        }
    }

    /// <summary>The raw producer with the sink's settings (acks all, linger 0), a batch produced then awaited.</summary>
    public async Task<double> RawProducerAsync(int records)
    {
        using var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig
        {
            BootstrapServers = kafkaBrokers, Acks = Acks.All, LingerMs = 0, MessageTimeoutMs = 30_000,
        }).Build();
        return await TimeAsync(records, Streams, Batch, async (first, count, _) =>
        {
            var reports = new Task[count];
            for (var i = 0; i < count; i++)
            {
                var value = JsonSerializer.SerializeToUtf8Bytes(Reading.Sample(first + i), BenchJson.Default.Reading);
                reports[i] = producer.ProduceAsync(kafkaTopic, new Message<byte[]?, byte[]> { Key = null, Value = value });
            }
            await Task.WhenAll(reports);
        });
    }

    /// <summary>
    /// <c>redis-benchmark -t set -P 64 -c 1 -d size -n count -r count -q</c>: its own reported requests/s. <c>-r</c>
    /// spreads its keys over as many names as the sink writes; without it every SET overwrites the one key
    /// <c>key:__rand_int__</c>, which costs the server about a third of a SET to a key among a quarter million
    /// (measured: 0.5–0.7 vs 1.6–1.8 µs of redis-server CPU per SET), so the baseline would do less work than the sink.
    /// </summary>
    public async Task<double> RedisBenchmarkAsync(int requests)
    {
        using var process = Process.Start(new ProcessStartInfo("redis-benchmark")
        {
            ArgumentList =
            {
                "-p", redisPort.ToString(CultureInfo.InvariantCulture), "-t", "set", "-P", RedisPipeline.ToString(CultureInfo.InvariantCulture),
                "-c", "1", "-d", ValueSize.ToString(CultureInfo.InvariantCulture), "-n", requests.ToString(CultureInfo.InvariantCulture),
                "-r", requests.ToString(CultureInfo.InvariantCulture), "-q",
            },
            RedirectStandardOutput = true,
        })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        // "SET: 123456.79 requests per second, p50=0.199 msec" (the last carriage-return-separated update).
        var line = output.Split('\r', '\n').Last(l => l.StartsWith("SET:", StringComparison.Ordinal));
        var number = line["SET:".Length..].Trim().Split(' ')[0];
        return double.Parse(number, CultureInfo.InvariantCulture);
    }

    private static async Task<double> TimeAsync(int total, int streams, int batch, Func<int, int, int, Task> deliver)
    {
        await deliver(10_000_000, Math.Min(batch, 10), 0); // warm-up: connections, JIT
        var perStream = total / streams;
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, streams).Select(async stream =>
        {
            for (var done = 0; done < perStream; done += batch)
                await deliver(stream * perStream + done, Math.Min(batch, perStream - done), stream);
        }));
        return perStream * streams / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(IReadOnlyList<string>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Reading))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
internal sealed partial class BenchJson : System.Text.Json.Serialization.JsonSerializerContext;
