using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Npgsql;
using Xunit.Abstractions;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// One sample worker (Native AOT when built) writing every result to the filesystem sink and to the sinks a scenario
/// adds, while a stream flows in and something it depends on fails for a while: the broker, PostgreSQL, Redis, the
/// Kafka sink's produce requests, the results directory. Every store is counted afterwards: nothing may be lost, and
/// with the default <c>on_outage: pause</c> an outage puts nothing in the DLQ.
/// </summary>
[Trait(NativeAotTrait.Name, NativeAotTrait.Sample)]
[Collection(FaultServersCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DependencyOutageTests(KafkaBroker kafka, PostgresServer postgres, RedisServer redis, ITestOutputHelper output) : IDisposable
{
    private const int Partitions = 2;
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(6);
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-outage-").FullName;

    public void Dispose()
    {
        Posix.Run("chattr", "-R", "-i", _dir);
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task PostgreSQL_down_for_6s_puts_nothing_in_the_dlq_and_every_row_arrives_after()
    {
        var database = postgres.CreateDatabase($"outage_{Guid.NewGuid():N}");
        await RunAsync("PostgreSQL killed for 6 s, then restarted (on_outage: pause)", new Sinks(Postgres: database), async () =>
        {
            postgres.Stop();
            await Task.Delay(Outage);
            postgres.Start();
        });
    }

    [Fact]
    public async Task Redis_down_for_6s_puts_nothing_in_the_dlq_and_every_key_arrives_after()
    {
        await RunAsync("Redis killed for 6 s, then restarted (on_outage: pause)", new Sinks(RedisPrefix: $"outage-{Guid.NewGuid():N}:"), async () =>
        {
            redis.Stop();
            try
            {
                await Task.Delay(Outage);
            }
            finally
            {
                redis.Start();
            }
        });
    }

    [Fact]
    public async Task The_broker_down_for_6s_loses_nothing_and_the_worker_carries_on()
    {
        var results = kafka.CreateTopic("outage-results", Partitions);
        await RunAsync("Kafka broker down for 6 s, then up (source, Kafka sink, commits)", new Sinks(KafkaTopic: results), async () =>
        {
            kafka.Broker.SetBrokerDown();
            try
            {
                await Task.Delay(Outage);
            }
            finally
            {
                kafka.Broker.SetBrokerUp();
            }
        }, duplicatesAllowed: true);
    }

    [Fact]
    public async Task Produce_errors_on_the_kafka_sink_are_retried_and_lose_nothing()
    {
        const short produceApi = 0;
        var results = kafka.CreateTopic("produce-errors", Partitions);
        // Retriable broker errors (what a leader election or an under-replicated partition answers): every produce
        // request of the next 40 fails, whichever client sends it; the sink's producer sends nearly all of them.
        ErrorCode[] errors = [ErrorCode.NotEnoughReplicas, ErrorCode.LeaderNotAvailable, ErrorCode.RequestTimedOut, ErrorCode.NotLeaderForPartition];
        try
        {
            await RunAsync("40 produce requests refused with retriable errors (Kafka sink)", new Sinks(KafkaTopic: results), () =>
            {
                kafka.Broker.PushRequestErrors(produceApi, [.. Enumerable.Range(0, 40).Select(i => errors[i % errors.Length])]);
                return Task.CompletedTask;
            });
        }
        finally
        {
            kafka.Broker.ClearRequestErrors(produceApi);
        }
    }

    [Fact]
    public async Task A_results_directory_that_cannot_be_written_for_6s_loses_nothing()
    {
        var file = Path.Combine(_dir, SampleResultsFile);
        await RunAsync("filesystem sink's file and directory immutable for 6 s (chattr +i)", new Sinks(), async () =>
        {
            // The tests run as root, which file modes do not stop: the immutable flag does (appends fail with EPERM).
            await Eventually.True(() => File.Exists(file), TimeSpan.FromSeconds(10), "the results file written");
            Posix.Run("chattr", "+i", file, _dir);
            try
            {
                await Task.Delay(Outage);
            }
            finally
            {
                Posix.Run("chattr", "-i", file, _dir);
            }
        }, outageGoesToDlq: true);
    }

    private const string SampleResultsFile = "search-results.jsonl";

    /// <summary>The sinks a scenario adds beside the filesystem sink every sample run writes.</summary>
    private sealed record Sinks(string? Postgres = null, string? RedisPrefix = null, string? KafkaTopic = null)
    {
        public string Yaml(string redisUrl) => string.Join("\n", new[]
        {
            Postgres is null ? null : $"  postgres: {{ main: {{ dsn: \"{Postgres}\" }} }}",
            RedisPrefix is null ? null : $"  redis: {{ cache: {{ url: \"{redisUrl}\", key_prefix: \"{RedisPrefix}\" }} }}",
            KafkaTopic is null ? null : $"  kafka: {{ results: {{ topic: {KafkaTopic} }} }}",
        }.Where(line => line is not null));

        public string Names => string.Join(" + ", new[] { "filesystem", Postgres is null ? null : "postgres", RedisPrefix is null ? null : "redis", KafkaTopic is null ? null : "kafka" }
            .Where(n => n is not null));
    }

    /// <param name="fault">Breaks something and returns once it is repaired.</param>
    /// <param name="duplicatesAllowed">Whether the fault may make the worker redo committed-late work (at-least-once).</param>
    /// <param name="outageGoesToDlq">
    /// The filesystem sink counts a refused open (EACCES, EPERM, EROFS) as a refusal of those payloads, not an outage:
    /// they go to the DLQ under every policy, so the scenario asserts they are all there instead.
    /// </param>
    private async Task RunAsync(string scenario, Sinks sinks, Func<Task> fault, bool duplicatesAllowed = false, bool outageGoesToDlq = false)
    {
        var topic = kafka.CreateTopic("outage-in", Partitions);
        var dlq = kafka.CreateTopic("outage-dlq", Partitions);
        var corpus = Path.Combine(_dir, "corpus.txt");
        await File.WriteAllLinesAsync(corpus, Enumerable.Range(0, 20).Select(i => $"line {i} drakkar longship"));
        var config = Path.Combine(_dir, "worker.yaml");
        await File.WriteAllTextAsync(config, $$"""
            kafka: { brokers: "{{kafka.BootstrapServers}}", source_topic: {{topic}}, consumer_group: {{topic}}-g, commit_interval_ms: 200, session_timeout_ms: 10000, heartbeat_interval_ms: 500 }
            executor: { binary_path: /usr/bin/grep, max_executors: 4, window_size: 10, drain_timeout_seconds: 10 }
            sinks:
              filesystem: { results: { base_path: "{{_dir}}" } }
            {{sinks.Yaml(redis.Url)}}
            dlq: { topic: {{dlq}} }
            metrics: { enabled: false }
            """);

        using var fleet = new WorkerFleet(_dir, config);
        await fleet.StartAsync(0);

        // About 40 messages a second before, during and after the fault.
        await using var stream = new RequestStream(kafka.BootstrapServers, topic, Partitions, corpus, TimeSpan.FromMilliseconds(25));
        await Task.Delay(TimeSpan.FromSeconds(2));
        await fault();
        var repaired = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(2));
        var produced = await stream.StopAsync();

        var file = Path.Combine(_dir, SampleResultsFile);
        try
        {
            await Eventually.True(() => Delivered(sinks, file).All(s => s.Ids.Count + (outageGoesToDlq ? TopicRecords.Count(kafka.BootstrapServers, dlq) : 0) >= produced),
                TimeSpan.FromSeconds(60), $"all {produced} requests in every sink");
        }
        catch (TimeoutException e)
        {
            // The worker's log as it is at the deadline, not as it was when the wait began.
            var missing = Delivered(sinks, file).Select(s =>
                $"{s.Name} {s.Ids.Count}, missing {string.Join(" ", Enumerable.Range(0, produced).Select(i => $"r-{i}").Where(id => !s.Ids.ContainsKey(id)).Take(20))}");
            throw new TimeoutException($"{e.Message}: {string.Join("; ", missing)}\n{fleet.Logs()}", e);
        }
        var recovered = repaired.Elapsed;
        await Task.Delay(500);
        fleet.StopAll(TimeSpan.FromSeconds(10));

        var dead = (int)TopicRecords.Count(kafka.BootstrapServers, dlq);
        var delivered = Delivered(sinks, file);
        var expected = Enumerable.Range(0, produced).Select(i => $"r-{i}").ToArray();
        var lost = delivered.Max(s => expected.Count(id => !s.Ids.ContainsKey(id))) - (outageGoesToDlq ? dead : 0);
        var duplicates = delivered.Max(s => s.Ids.Values.Sum(n => n - 1));
        var perSink = string.Join(", ", delivered.Select(s => $"{s.Name} {s.Ids.Count}"));
        output.WriteLine($"{scenario}: {produced} in; {perSink}; DLQ {dead}; duplicates {duplicates}; lost {lost}; recovered {recovered.TotalSeconds:0.0}s after the repair; " +
            $"{(fleet.NativeAot ? "AOT" : "JIT")} worker");
        FaultReport.Add(scenario, $"{produced} messages, {Partitions} partitions, sinks {sinks.Names}, {(fleet.NativeAot ? "Native AOT" : "JIT")} worker",
            perSink, dead, duplicates, lost,
            outageGoesToDlq
                ? string.Create(CultureInfo.InvariantCulture, $"the payloads refused during the fault are in the DLQ (replayable), the rest delivered {recovered.TotalSeconds:0.0} s after the repair")
                : string.Create(CultureInfo.InvariantCulture, $"everything delivered {recovered.TotalSeconds:0.0} s after the repair"));

        Assert.True(lost == 0, $"{lost} lost ({perSink}, DLQ {dead})\n{fleet.Logs()}");
        if (outageGoesToDlq) Assert.True(dead > 0, "the refused payloads are in the DLQ");
        else Assert.True(dead == 0, $"{dead} records in the DLQ\n{fleet.Logs()}");
        if (!duplicatesAllowed) Assert.True(duplicates == 0, $"{duplicates} duplicates\n{fleet.Logs()}");
    }

    /// <summary>Per sink the scenario writes to, how often each request id arrived there.</summary>
    private List<(string Name, Dictionary<string, int> Ids)> Delivered(Sinks sinks, string file)
    {
        var stores = new List<(string, Dictionary<string, int>)> { ("filesystem", WorkerFleet.Results(file)) };
        if (sinks.Postgres is { } dsn) stores.Add(("postgres", PostgresIds(dsn)));
        if (sinks.RedisPrefix is { } prefix && redis.IsRunning) stores.Add(("redis", RedisIds(prefix)));
        if (sinks.KafkaTopic is { } results) stores.Add(("kafka", TopicRecords.ReadAll(kafka.BootstrapServers, results)
            .GroupBy(r => System.Text.Encoding.UTF8.GetString(r.Key ?? [])).ToDictionary(g => g.Key, g => g.Count())));
        return stores;
    }

    private static Dictionary<string, int> PostgresIds(string dsn)
    {
        try
        {
            using var connection = new NpgsqlConnection(dsn);
            connection.Open();
            using var command = new NpgsqlCommand("SELECT request_id, count(*) FROM search_results GROUP BY request_id", connection);
            using var reader = command.ExecuteReader();
            var ids = new Dictionary<string, int>();
            while (reader.Read()) ids[reader.GetString(0)] = (int)reader.GetInt64(1);
            return ids;
        }
        catch (NpgsqlException)
        {
            return [];
        }
    }

    /// <summary>Redis keeps one value per key, so a repeated SET cannot be seen: each key counts once.</summary>
    private Dictionary<string, int> RedisIds(string prefix)
    {
        using var client = new Resp(redis.Port);
        var keys = client.Call("EVAL", "return table.concat(redis.call('KEYS', ARGV[1]), '\\n')", "0", $"{prefix}search:*") ?? "";
        return keys.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToDictionary(k => k[$"{prefix}search:".Length..], _ => 1);
    }
}

[CollectionDefinition(Name)]
public sealed class FaultServersCollection : ICollectionFixture<KafkaBroker>, ICollectionFixture<PostgresServer>, ICollectionFixture<RedisServer>
{
    public const string Name = "fault-servers";
}
