using System.Net.Http.Json;
using System.Text;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Npgsql;

namespace Drakkar.IntegrationTests.FixtureTests;

[Collection(PostgresCollection.Name)]
public sealed class PostgresFixtureTests(PostgresServer postgres)
{
    [Fact]
    public async Task A_query_round_trips_through_the_throwaway_cluster()
    {
        var connectionString = postgres.CreateDatabase("fixture_roundtrip");
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using (var create = new NpgsqlCommand("CREATE TABLE t (id int primary key, name text); INSERT INTO t VALUES (7, 'seven')", connection))
            await create.ExecuteNonQueryAsync();
        await using var query = new NpgsqlCommand("SELECT name FROM t WHERE id = 7", connection);
        Assert.Equal("seven", await query.ExecuteScalarAsync());
    }

    [Fact]
    public void Missing_server_binaries_say_what_is_missing_and_how_to_install_them()
    {
        var error = Assert.Throws<MissingToolException>(() => PostgresServer.FindBinaries("/nonexistent/postgresql/bin"));
        Assert.Contains("initdb", error.Message);
        Assert.Contains("apt-get install -y postgresql", error.Message);
    }
}

[Collection(RedisCollection.Name)]
public sealed class RedisFixtureTests(RedisServer redis)
{
    [Fact]
    public void Ping_set_and_get_round_trip_over_resp()
    {
        using var client = new Resp(redis.Port);
        Assert.Equal("PONG", client.Call("PING"));
        Assert.Equal("OK", client.Call("SET", "fixture:key", "välue"));
        Assert.Equal("välue", client.Call("GET", "fixture:key"));
        Assert.Null(client.Call("GET", "fixture:absent"));
    }
}

[Collection(KafkaCollection.Name)]
public sealed class KafkaFixtureTests(KafkaBroker kafka)
{
    [Fact]
    public async Task Produce_then_consume_through_a_group_and_commit_an_offset()
    {
        var topic = kafka.CreateTopic("fixture", partitions: 2);
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).Build())
        {
            for (var i = 0; i < 10; i++)
                await producer.ProduceAsync(new TopicPartition(topic, i % 2), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
        }

        var config = new ConsumerConfig
        {
            BootstrapServers = kafka.BootstrapServers,
            GroupId = $"{topic}-group",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        };
        using var consumer = new ConsumerBuilder<string, string>(config).Build();
        consumer.Subscribe(topic);
        var seen = new List<string>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (seen.Count < 10 && DateTime.UtcNow < deadline)
        {
            var record = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (record is null) continue;
            seen.Add(record.Message.Value);
            consumer.Commit(record);
        }
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"v{i}").Order(), seen.Order());

        var committed = consumer.Committed([new TopicPartition(topic, 0), new TopicPartition(topic, 1)], TimeSpan.FromSeconds(10));
        Assert.All(committed, c => Assert.Equal(5, c.Offset.Value));
        consumer.Close();
    }
}

[Collection(HttpCollection.Name)]
public sealed class HttpFixtureTests(HttpReceiver receiver)
{
    [Fact]
    public async Task A_post_is_recorded_with_its_headers_and_body()
    {
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, receiver.Url + "hook")
        {
            Content = new StringContent("{\"n\":1}", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Fixture", "yes");
        using var response = await client.SendAsync(request);
        Assert.Equal(200, (int)response.StatusCode);
        var seen = Assert.Single(receiver.Requests, r => r.Path == "/hook");
        Assert.Equal("POST", seen.Method);
        Assert.Equal("yes", seen.Headers["X-Fixture"]);
        Assert.Equal("{\"n\":1}", seen.Body);
    }
}
