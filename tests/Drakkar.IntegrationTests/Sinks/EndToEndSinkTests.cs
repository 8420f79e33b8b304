using System.Text;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

[Collection(SinksCollection.Name)]
public sealed class EndToEndSinkTests(PostgresServer postgres, RedisServer redis, KafkaBroker kafka, HttpReceiver receiver) : IDisposable
{
    private readonly string _files = Directory.CreateTempSubdirectory("drakkar-e2e-").FullName;
    private readonly MongoWireServer _mongo = new("worker", "e2e-mongo-pass");

    public void Dispose()
    {
        _mongo.Dispose();
        Directory.Delete(_files, recursive: true);
    }

    [Fact]
    public async Task One_collect_result_reaches_all_six_kinds_at_once()
    {
        var db = postgres.CreateDatabase($"e2e_{Environment.ProcessId}");
        await using (var connection = new NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE search_results (id text, count integer, score double precision, note text, tags jsonb)", connection);
            await create.ExecuteNonQueryAsync();
        }
        receiver.RespondWith(200);
        var resultsTopic = kafka.CreateTopic("e2e-results");
        var sourceTopic = kafka.CreateTopic("e2e-source");
        kafka.Broker.CreateTopic(sourceTopic + "_dlq");
        var hookPath = $"/e2e-{Guid.NewGuid():N}";

        var config = new DrakkarConfig();
        config.Kafka.Brokers = kafka.BootstrapServers;
        config.Kafka.SourceTopic = sourceTopic;
        config.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = resultsTopic };
        config.Sinks.Postgres["main"] = new PostgresSinkConfig { Dsn = db };
        config.Sinks.Mongo["archive"] = new MongoSinkConfig { Uri = _mongo.Uri("worker:e2e-mongo-pass"), Database = "search" };
        config.Sinks.Redis["cache"] = new RedisSinkConfig { Url = redis.Url, KeyPrefix = "e2e:" };
        config.Sinks.Http["webhook"] = new HttpSinkConfig { Url = receiver.Url.TrimEnd('/') + hookPath };
        config.Sinks.Filesystem["files"] = new FileSinkConfig { BasePath = _files };
        SinkDeclaration[] declared =
        [
            new(SinkKind.Kafka, "results"), new(SinkKind.Postgres, "main"), new(SinkKind.Mongo, "archive"),
            new(SinkKind.Redis, "cache"), new(SinkKind.Http, "webhook"), new(SinkKind.Filesystem, "files"),
        ];
        var metrics = new DrakkarMetrics();
        var manager = SinkManager.Create(config, declared, new SinkManagerOptions(), metrics, NullLoggerFactory.Instance, new SinkRegistry().AddMongoDB());
        Assert.Equal(sourceTopic + "_dlq", manager.DeadLetterDestination);
        await manager.StartAsync(default);
        Assert.True(manager.IsReady);

        var reading = Reading.Sample(4);
        var result = new CollectResult
        {
            Kafka = { KafkaPayload.Of(reading, Encoding.UTF8.GetBytes(reading.Id)) },
            Postgres = { PostgresPayload.Of("search_results", reading) },
            Mongo = { MongoPayload.Of("search_archive", reading) },
            Redis = { RedisPayload.Of($"search:{reading.Id}", reading, TimeSpan.FromHours(1)) },
            Http = { HttpPayload.Of(reading) },
            Files = { FilePayload.Of("high-match.jsonl", reading) },
        };
        await manager.DeliverAsync(result, Origin(sourceTopic, 0, 1), default);
        await manager.CloseAsync();

        var json = PayloadData.Of(reading).ToJson();
        Assert.All(manager.Stats, s => Assert.Equal(1, s.Delivered));
        var record = Assert.Single(Consume(kafka.BootstrapServers, resultsTopic, 1));
        Assert.Equal(reading.Id, Encoding.UTF8.GetString(record.Message.Key!));
        Assert.Equal(json, Encoding.UTF8.GetString(record.Message.Value));
        await using (var connection = new NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            await using var query = new NpgsqlCommand("SELECT note FROM search_results WHERE id = 'r-4'", connection);
            Assert.Equal(reading.Note, await query.ExecuteScalarAsync());
        }
        var insert = Assert.Single(_mongo.Inserts);
        Assert.Equal(("search", "search_archive"), (insert.Database, insert.Collection));
        Assert.Equal(reading.Id, Assert.Single(_mongo.Stored("search", "search_archive"))["id"].AsString);
        using (var client = new Resp(redis.Port))
        {
            Assert.Equal(json, client.Call("GET", "e2e:search:r-4"));
            Assert.NotEqual("-1", client.Call("TTL", "e2e:search:r-4"));
        }
        Assert.Equal(json, Assert.Single(receiver.Requests, r => r.Path == hookPath).Body);
        Assert.Equal([json], await File.ReadAllLinesAsync(Path.Combine(_files, "high-match.jsonl")));
        Assert.Contains("drakkar_sink_payloads_delivered_total{sink_type=\"mongo\",sink_name=\"archive\"} 1", metrics.Registry.Export());
    }
}
