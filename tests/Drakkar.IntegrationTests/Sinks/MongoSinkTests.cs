using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Drakkar.Sinks.Mongo;
using Microsoft.Extensions.Logging.Abstractions;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

public sealed class MongoSinkTests : IDisposable
{
    private readonly List<MongoWireServer> _servers = [];

    public void Dispose()
    {
        foreach (var server in _servers) server.Dispose();
    }

    private MongoWireServer Server(string? user = null, string? password = null, bool helloUnsupported = false)
    {
        var server = new MongoWireServer(user, password, helloUnsupported);
        _servers.Add(server);
        return server;
    }

    private static (SinkManager Manager, RecordingDlq Dlq) Manager(string uri, string database = "archive_db", bool idempotentHook = false)
    {
        var masker = new SinkSecretMasker();
        var dlq = new RecordingDlq();
        var manager = new SinkManager([new MongoSink("docs", new MongoSinkConfig { Uri = uri, Database = database }, masker)], dlq,
            new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance, masker);
        return (manager, dlq);
    }

    /// <summary>Decodes BSON with Debian's python3-bson, an implementation independent of ours.</summary>
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
            using var python = Process.Start(info)!;
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
    public async Task Each_collection_gets_one_ordered_insert_whose_bson_an_independent_decoder_reads_back()
    {
        var server = Server();
        var (manager, dlq) = Manager($"mongodb://127.0.0.1:{server.Port}");
        await manager.StartAsync(default);
        var at = new DateTimeOffset(2026, 3, 4, 5, 6, 7, 890, TimeSpan.Zero);
        var result = new CollectResult();
        for (var i = 0; i < 4; i++) result.Mongo.Add(MongoPayload.Of("readings", Reading.Sample(i)));
        result.Mongo.Add(MongoPayload.Of("stamps", new Stamp("k", 5_000_000_000, at)));
        result.Mongo.Add(MongoPayload.Of("readings", Reading.Sample(4)));

        await manager.DeliverAsync(result, Origin(), default);
        await manager.CloseAsync();

        Assert.Empty(dlq.Letters);
        var inserts = server.Inserts.ToArray();
        Assert.Equal(2, inserts.Length);
        Assert.All(inserts, i => { Assert.Equal("archive_db", i.Database); Assert.True(i.Ordered); });
        var readings = inserts.Single(i => i.Collection == "readings");
        Assert.Equal(5, readings.Documents.Count);

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

    [Fact]
    public async Task Credentials_in_the_uri_authenticate_with_scram_sha_256()
    {
        var server = Server("app", "m0ngo-pass");
        var (manager, dlq) = Manager($"mongodb://app:m0ngo-pass@127.0.0.1:{server.Port}/?authSource=admin");
        await manager.StartAsync(default);
        await manager.DeliverAsync(new CollectResult { Mongo = { MongoPayload.Of("readings", Reading.Sample(1)) } }, Origin(), default);
        Assert.Empty(dlq.Letters);
        Assert.Single(server.Inserts);
        Assert.Equal(["hello", "saslStart", "saslContinue", "insert"], server.Commands);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_wrong_password_stops_startup_without_revealing_it()
    {
        var server = Server("app", "m0ngo-pass");
        var (manager, _) = Manager($"mongodb://app:wrong-pass-42@127.0.0.1:{server.Port}/admin");
        var error = await Assert.ThrowsAsync<SinkStartupException>(() => manager.StartAsync(default));
        Assert.Contains("sinks.mongo.docs", error.Message);
        Assert.Contains("Authentication failed", error.Message);
        Assert.DoesNotContain("wrong-pass-42", error.Message);
        Assert.Empty(server.Inserts);
    }

    [Fact]
    public async Task An_older_server_without_hello_is_greeted_with_is_master()
    {
        var server = Server(helloUnsupported: true);
        var (manager, dlq) = Manager($"mongodb://127.0.0.1:{server.Port}");
        await manager.StartAsync(default);
        await manager.DeliverAsync(new CollectResult { Mongo = { MongoPayload.Of("readings", Reading.Sample(1)) } }, Origin(), default);
        Assert.Empty(dlq.Letters);
        Assert.Equal(["hello", "isMaster", "insert"], server.Commands);
    }

    [Fact]
    public async Task A_refused_insert_fails_the_batch_and_a_dropped_connection_is_reopened_for_the_next()
    {
        var server = Server();
        var (manager, dlq) = Manager($"mongodb://127.0.0.1:{server.Port}");
        await manager.StartAsync(default);
        server.FailInserts(1, code: 2);
        await manager.DeliverAsync(new CollectResult { Mongo = { MongoPayload.Of("readings", Reading.Sample(1)) } }, Origin(), default);
        Assert.Contains("MongoDB insert into readings failed", Assert.Single(dlq.Letters).Error);

        server.DropNextInsert();
        await manager.DeliverAsync(new CollectResult { Mongo = { MongoPayload.Of("readings", Reading.Sample(2)) } }, Origin(), default);
        Assert.Contains("connection", dlq.Letters.Last().Error);
        await manager.DeliverAsync(new CollectResult { Mongo = { MongoPayload.Of("readings", Reading.Sample(3)) } }, Origin(), default);
        Assert.Equal(2, dlq.Letters.Count);
        Assert.Single(server.Inserts);
    }

    [Fact]
    public void The_scram_client_matches_the_rfc_7677_test_vector()
    {
        var scram = new ScramSha256("user", "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO");
        Assert.Equal("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", Encoding.UTF8.GetString(scram.ClientFirst()));
        var clientFinal = scram.ClientFinal(Encoding.UTF8.GetBytes("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
        Assert.Equal("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            Encoding.UTF8.GetString(clientFinal));
        scram.VerifyServerFinal(Encoding.UTF8.GetBytes("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
        Assert.Throws<SinkDeliveryException>(() => scram.VerifyServerFinal(Encoding.UTF8.GetBytes("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")));
    }

    [Theory]
    [InlineData("mongodb+srv://cluster.example.com/")]
    [InlineData("mongodb://u:p@h/?authMechanism=SCRAM-SHA-1")]
    [InlineData("postgres://h/")]
    public void Unsupported_uris_are_configuration_errors(string uri)
    {
        var error = Assert.Throws<SinkConfigurationException>(() => new MongoSink("docs", new MongoSinkConfig { Uri = uri, Database = "d" }, new SinkSecretMasker()));
        Assert.Contains("sinks.mongo.docs.uri", error.Message);
    }
}
