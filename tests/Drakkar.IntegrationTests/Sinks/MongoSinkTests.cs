using System.Diagnostics;
using System.Text.Json;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Drakkar.Sinks.Mongo;
using Microsoft.Extensions.Logging.Abstractions;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

/// <summary>The MongoDB sink (Drakkar.Sinks.MongoDB, on the official driver) against the wire-protocol test server.</summary>
public sealed class MongoSinkTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly List<MongoWireServer> _servers = [];

    public void Dispose()
    {
        foreach (var server in _servers) server.Dispose();
    }

    private MongoWireServer Server(string? user = null, string? password = null, bool tls = false)
    {
        var server = new MongoWireServer(user, password, tls);
        _servers.Add(server);
        return server;
    }

    private static DrakkarConfig Config(string uri, string database = "archive_db")
    {
        var config = new DrakkarConfig();
        config.Sinks.Mongo["docs"] = new MongoSinkConfig { Uri = uri, Database = database };
        return config;
    }

    /// <summary>The sink built the way a worker builds it: from config, through the registry, registered by AddMongoDB().</summary>
    private static (SinkManager Manager, RecordingDlq Dlq) Manager(string uri, string database = "archive_db", SinkManagerOptions? options = null)
    {
        var masker = new SinkSecretMasker();
        var sinks = new SinkRegistry().AddMongoDB().Build(Config(uri, database), [new SinkDeclaration(SinkKind.Mongo, "docs")], masker,
            NullLoggerFactory.Instance);
        var dlq = new RecordingDlq();
        return (new SinkManager(sinks, dlq, options ?? new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance, masker), dlq);
    }

    private static CollectResult Readings(params int[] samples)
    {
        var result = new CollectResult();
        foreach (var i in samples) result.Mongo.Add(MongoPayload.Of("readings", Reading.Sample(i)));
        return result;
    }

    private static string[] StoredIds(MongoWireServer server, string collection = "readings") =>
        [.. server.Stored("archive_db", collection).Select(d => d["id"].AsString)];

    /// <summary>Decodes BSON with Debian's python3-bson, an implementation independent of ours and of the driver's.</summary>
    private static JsonElement PythonDecode(IEnumerable<byte[]> documents)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(file, documents.SelectMany(d => d).ToArray());
            var info = new ProcessStartInfo("/usr/bin/python3")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                ArgumentList =
                {
                    "-c",
                    "import bson,sys,json,datetime\n" +
                    "docs=bson.decode_all(open(sys.argv[1],'rb').read())\n" +
                    "conv=lambda o: o.isoformat() if isinstance(o,datetime.datetime) else {'type':type(o).__name__,'repr':str(o)}\n" +
                    "print(json.dumps([[(k,type(v).__name__) for k,v in d.items()] for d in docs]))\n" +
                    "print(json.dumps(docs, default=conv))",
                    file,
                },
            };
            using var python = ChildProcesses.Start(info);
            var output = python.StandardOutput.ReadToEnd();
            var errors = python.StandardError.ReadToEnd();
            python.WaitForExit();
            Assert.True(python.ExitCode == 0, $"python3-bson could not decode the documents: {errors}");
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            return JsonDocument.Parse($"{{\"types\":{lines[0]},\"docs\":{lines[1]}}}").RootElement.Clone();
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Each_collection_gets_one_unordered_insert_of_the_generated_bson_that_an_independent_decoder_reads_back()
    {
        var server = Server();
        var (manager, dlq) = Manager(server.Uri());
        await manager.StartAsync(default);
        var at = new DateTimeOffset(2026, 3, 4, 5, 6, 7, 890, TimeSpan.Zero);
        var result = Readings(0, 1, 2, 3);
        result.Mongo.Add(MongoPayload.Of("stamps", new Stamp("k", 5_000_000_000, at)));
        result.Mongo.Add(MongoPayload.Of("readings", Reading.Sample(4)));

        await manager.DeliverAsync(result, Origin(), default);
        await manager.CloseAsync();

        Assert.Empty(dlq.Letters);
        var inserts = server.Inserts.ToArray();
        Assert.Equal(2, inserts.Length);
        Assert.All(inserts, i => { Assert.Equal("archive_db", i.Database); Assert.False(i.Ordered); });
        var readings = inserts.Single(i => i.Collection == "readings");
        Assert.Equal(5, readings.Documents.Count);
        // The driver sends the generated bytes untouched: no _id added on the client, no re-serialization.
        Assert.Equal(BsonOf(Reading.Sample(1)), readings.Documents[1]);

        var decoded = PythonDecode(readings.Documents);
        Assert.Equal("[[\"id\",\"str\"],[\"count\",\"int\"],[\"score\",\"float\"],[\"note\",\"str\"],[\"tags\",\"list\"]]",
            decoded.GetProperty("types")[1].GetRawText().Replace(" ", ""));
        var second = decoded.GetProperty("docs")[1];
        Assert.Equal("r-1", second.GetProperty("id").GetString());
        Assert.Equal(1, second.GetProperty("count").GetInt32());
        Assert.Equal(0.5, second.GetProperty("score").GetDouble());
        Assert.Equal("note 1 ✓", second.GetProperty("note").GetString());
        Assert.Equal(["t1", "x"], second.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(JsonValueKind.Null, decoded.GetProperty("docs")[0].GetProperty("note").ValueKind);

        var stamp = PythonDecode(inserts.Single(i => i.Collection == "stamps").Documents).GetProperty("docs")[0];
        Assert.Equal(5_000_000_000, stamp.GetProperty("sequence").GetInt64());
        Assert.StartsWith("2026-03-04T05:06:07.890", stamp.GetProperty("at").GetString());
    }

    private static byte[] BsonOf(Reading reading)
    {
        var writer = new BsonWriter();
        PayloadData.Of(reading).WriteBson(writer);
        return writer.ToArray();
    }

    [Fact]
    public async Task A_payload_that_refers_to_itself_is_dead_lettered_with_a_reason_and_its_neighbours_are_written()
    {
        var server = Server();
        var (manager, dlq) = Manager(server.Uri());
        await manager.StartAsync(default);
        var ring = new CollectResult();
        ring.Mongo.Add(MongoPayload.Of("links", Link.Ring("loop")));

        await Task.WhenAll(
            manager.DeliverAsync(Readings(1), Origin("orders", 0, 20), default).AsTask(),
            manager.DeliverAsync(ring, Origin("orders", 0, 21), default).AsTask()).WaitAsync(Patience);
        await manager.CloseAsync();

        var letter = Assert.Single(dlq.Letters);
        Assert.Equal(21, Assert.Single(letter.Messages).Offset);
        Assert.Contains("Link", letter.Error, StringComparison.Ordinal);
        Assert.Contains("more than 100 levels", letter.Error, StringComparison.Ordinal);
        // The dead letter itself can be written: the payload that has no JSON form is kept as text naming its type.
        var record = JsonDocument.Parse(letter.ToJsonBytes()).RootElement;
        Assert.StartsWith("[unserializable Link:", record.GetProperty("original_payloads")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(["r-1"], StoredIds(server));
        Assert.Empty(server.Stored("archive_db", "links"));
    }

    [Fact]
    public async Task A_duplicate_key_dead_letters_only_its_own_group_and_its_neighbours_are_written_once()
    {
        var server = Server();
        server.UniqueIndex("archive_db", "readings", "id");
        // Three hook calls queued together share one batch, so one unordered insert carries all of them.
        var (manager, dlq) = Manager(server.Uri(), options: new SinkManagerOptions { Batching = (_, _) => new SinkBatching(6, TimeSpan.FromSeconds(2)) });
        await manager.StartAsync(default);
        await manager.DeliverAsync(Readings(2), Origin("orders", 0, 1), default);
        Assert.Single(server.Inserts);

        await Task.WhenAll(
            manager.DeliverAsync(Readings(1, 3), Origin("orders", 0, 10), default).AsTask(),
            manager.DeliverAsync(Readings(4, 2), Origin("orders", 0, 11), default).AsTask(),
            manager.DeliverAsync(Readings(5, 6), Origin("orders", 1, 12), default).AsTask()).WaitAsync(Patience);
        await manager.CloseAsync();

        Assert.Equal(2, server.Inserts.Count);
        Assert.Equal(6, server.Inserts.Last().Documents.Count);
        var letter = Assert.Single(dlq.Letters);
        Assert.Equal(11, Assert.Single(letter.Messages).Offset);
        Assert.Contains("E11000 duplicate key", letter.Error);
        Assert.Contains("(code 11000)", letter.Error); // sinks.md's Skip recipe matches this text
        // r-4 shared the failed group, so it is in the dead letter too, yet it was written: the server refused only r-2.
        Assert.Equal(["r-2", "r-1", "r-3", "r-4", "r-5", "r-6"], StoredIds(server));
        Assert.Equal(5, manager.StatsOf("mongo", "docs").Delivered);
    }

    [Fact]
    public async Task A_write_concern_error_fails_the_written_documents_as_not_acknowledged()
    {
        var server = Server();
        var (manager, dlq) = Manager(server.Uri());
        await manager.StartAsync(default);
        server.FailWriteConcern(1);

        await manager.DeliverAsync(Readings(1, 2), Origin("orders", 0, 7), default).AsTask().WaitAsync(Patience);
        await manager.DeliverAsync(Readings(3), Origin("orders", 0, 8), default).AsTask().WaitAsync(Patience);
        await manager.CloseAsync();

        var letter = Assert.Single(dlq.Letters);
        Assert.Equal(7, Assert.Single(letter.Messages).Offset);
        Assert.Contains("could not satisfy the write concern: waiting for replication timed out (code 64)", letter.Error);
        Assert.Equal(["r-1", "r-2", "r-3"], StoredIds(server));
    }

    /// <summary>
    /// A handler rides out an outage of this non-idempotent sink by answering <c>Retry</c>: the failed attempt never
    /// reached a server, and the retry waits in the driver's server selection until the server is back.
    /// </summary>
    [Fact]
    public async Task An_outage_loses_nothing_retried_deliveries_wait_for_the_server_and_land_once_when_it_is_back()
    {
        var server = Server();
        var (manager, dlq) = Manager(server.Uri(options: "serverSelectionTimeoutMS=30000"), options: new SinkManagerOptions
        {
            OnDeliveryError = _ => ValueTask.FromResult(DeliveryAction.Retry),
            MaxRetries = 3,
        });
        await manager.StartAsync(default);
        await manager.DeliverAsync(Readings(1), Origin("orders", 0, 1), default);

        server.Stop();
        var during = Enumerable.Range(2, 5).Select(i => manager.DeliverAsync(Readings(i), Origin("orders", 0, i), default).AsTask()).ToArray();
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.All(during, d => Assert.False(d.IsCompleted));
        server.Start();
        await Task.WhenAll(during).WaitAsync(Patience);
        await manager.DeliverAsync(Readings(7), Origin("orders", 0, 7), default).AsTask().WaitAsync(Patience);
        await manager.CloseAsync();

        Assert.Empty(dlq.Letters);
        Assert.Equal(["r-1", "r-2", "r-3", "r-4", "r-5", "r-6", "r-7"], StoredIds(server).Order());
        Assert.Equal(7, manager.StatsOf("mongo", "docs").Delivered);
    }

    [Fact]
    public async Task A_connection_dropped_during_an_insert_fails_its_group_as_transient_and_the_next_delivery_reconnects()
    {
        var server = Server();
        var (manager, dlq) = Manager(server.Uri());
        await manager.StartAsync(default);
        server.DropNextInsert();

        await manager.DeliverAsync(Readings(1), Origin("orders", 0, 1), default).AsTask().WaitAsync(Patience);
        await manager.DeliverAsync(Readings(2), Origin("orders", 0, 2), default).AsTask().WaitAsync(Patience);
        await manager.CloseAsync();

        var letter = Assert.Single(dlq.Letters);
        Assert.Equal(1, Assert.Single(letter.Messages).Offset);
        Assert.Contains("insert of 1 document(s) into readings", letter.Error);
        Assert.Equal(["r-2"], StoredIds(server));
    }

    [Fact]
    public async Task Credentials_in_the_uri_authenticate_with_scram_sha_256()
    {
        var server = Server("app", "m0ngo-pass");
        var (manager, dlq) = Manager(server.Uri("app:m0ngo-pass", "authSource=admin"));
        await manager.StartAsync(default);
        await manager.DeliverAsync(Readings(1), Origin(), default);
        await manager.CloseAsync();

        Assert.Empty(dlq.Letters);
        Assert.Equal(["r-1"], StoredIds(server));
        Assert.Contains("saslStart", server.Commands);
        Assert.Contains("saslContinue", server.Commands);
    }

    [Fact]
    public async Task A_wrong_password_stops_startup_without_revealing_it()
    {
        var server = Server("app", "m0ngo-pass");
        var (manager, _) = Manager(server.Uri("app:wrong-pass-42"));
        var error = await Assert.ThrowsAsync<SinkStartupException>(() => manager.StartAsync(default)).WaitAsync(Patience);
        Assert.Contains("sinks.mongo.docs", error.Message);
        Assert.Contains("Authentication failed", error.Message);
        Assert.DoesNotContain("wrong-pass-42", error.ToString());
        Assert.Empty(server.Inserts);
    }

    [Fact]
    public async Task A_tls_uri_writes_over_tls()
    {
        var server = Server(tls: true);
        var (manager, dlq) = Manager(server.Uri());
        await manager.StartAsync(default);
        await manager.DeliverAsync(Readings(1), Origin(), default);
        await manager.CloseAsync();

        Assert.Empty(dlq.Letters);
        Assert.Equal(["r-1"], StoredIds(server));
        Assert.True(server.TlsSessions > 0);
    }

    [Theory]
    [InlineData("mongodb+srv://app:pw@cluster0.example.invalid/?authSource=admin")]
    [InlineData("mongodb://db1:27017,db2:27017,db3:27017/?replicaSet=rs0&readPreference=primary&w=majority")]
    [InlineData("mongodb://app:pw@db1/?authMechanism=SCRAM-SHA-1&tls=true")]
    [InlineData("mongodb://db1/?authMechanism=MONGODB-X509&tls=true")]
    public void Replica_set_srv_tls_and_the_drivers_auth_mechanisms_are_accepted(string uri)
    {
        var sinks = new SinkRegistry().AddMongoDB().Build(Config(uri), [], new SinkSecretMasker(), NullLoggerFactory.Instance);
        Assert.Equal(("mongo", "docs"), (Assert.Single(sinks).Kind, sinks[0].Name));
    }

    [Theory]
    [InlineData("postgres://h/")]
    [InlineData("mongodb://app:pw@h/?authMechanism=NOPE")]
    public void A_uri_the_driver_cannot_use_is_a_configuration_error_naming_the_key(string uri)
    {
        var error = Assert.Throws<SinkConfigurationException>(() =>
            new SinkRegistry().AddMongoDB().Build(Config(uri), [], new SinkSecretMasker(), NullLoggerFactory.Instance));
        Assert.Contains("sinks.mongo.docs.uri", error.Message);
    }

    [Fact]
    public void Without_the_registration_a_configured_mongo_sink_stops_startup_naming_the_package()
    {
        var error = Assert.Throws<SinkConfigurationException>(() =>
            new SinkRegistry().Build(Config("mongodb://db1"), [], new SinkSecretMasker(), NullLoggerFactory.Instance));
        Assert.Contains("sinks.mongo.docs: the mongo sink ships in its own package; reference Drakkar.Sinks.MongoDB", error.Message);
        Assert.Contains("new SinkRegistry().AddMongoDB()", error.Message);
        Assert.Throws<InvalidOperationException>(() => new SinkRegistry().AddMongoDB().AddMongoDB());
    }
}
