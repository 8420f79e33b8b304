using System.Net;
using Drakkar.Hosting;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Sinks;
using Drakkar.IntegrationTests.Support;
using Npgsql;

namespace Drakkar.IntegrationTests.Operations;

/// <summary>/metrics, /healthz and /readyz of a real in-process worker (SPEC X1, X2).</summary>
[Collection(KafkaCollection.Name)]
public sealed class MetricsEndpointTests(KafkaBroker kafka) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly KafkaBroker _kafka = kafka;
    // Without the append-only file: the restarted server comes back empty, so what it holds came after the outage.
    private readonly RedisServer _redis = RedisServer.WithoutPersistence();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    public void Dispose()
    {
        _http.Dispose();
        _redis.Dispose();
    }

    [Fact]
    public async Task Probes_follow_the_worker_from_startup_through_a_sink_outage_and_metrics_move_with_messages()
    {
        var topic = _kafka.CreateTopic("ops-source", partitions: 2);
        _kafka.Broker.CreateTopic(topic + "_dlq", 1);
        var port = FreePort.Next();
        var config = WithMetrics(topic, "ops-group", port, c =>
        {
            c.Sinks.Redis["cache"] = new RedisSinkConfig { Url = _redis.Url, KeyPrefix = "ops:" };
        });
        var handler = new CachingHandler();
        var baseUrl = $"http://127.0.0.1:{port}";

        // OnReady runs after the endpoint is up and before the consumer starts: held there, the worker is not ready.
        var starting = TestWorker.StartAsync(handler, config);
        var notReady = await Eventually.Get(() => TryGet($"{baseUrl}/readyz"), r => r is not null, Deadline, "/readyz answering");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady!.Value.Status);
        Assert.Contains("the consumer has not polled the source topic yet", notReady.Value.Body);
        Assert.Equal((HttpStatusCode.OK, "ok"), Trimmed(TryGet($"{baseUrl}/healthz")));

        handler.ReleaseOnReady();
        await using var worker = await starting;
        Assert.Equal(port, worker.MetricsEndpoint!.Port);
        await Eventually.True(() => TryGet($"{baseUrl}/readyz")?.Status == HttpStatusCode.OK, Deadline, "/readyz 200 after the first poll");

        var before = Parse(await Scrape(baseUrl));
        Assert.Equal(0, Sum(before, "drakkar_messages_consumed_total"));
        var circuit = Assert.Single(before, s => s.Name == "drakkar_sink_circuit_open");
        Assert.Equal(("redis", "cache", 0.0), (circuit.Labels["sink_type"], circuit.Labels["sink_name"], circuit.Value));
        Assert.Single(before, s => s.Name == "drakkar_executor_pool_active");

        await TestWorker.ProduceAsync(_kafka.BootstrapServers, topic, 2, 10);
        var after = await Eventually.Get(() => Parse(Scrape(baseUrl).GetAwaiter().GetResult()),
            s => s is not null && Sum(s, "drakkar_messages_consumed_total") == 10 && Sum(s, "drakkar_sink_payloads_delivered_total") == 10, Deadline,
            "10 messages consumed and delivered in /metrics");
        Assert.Equal(2, after.Count(s => s.Name == "drakkar_messages_consumed_total"));
        Assert.Equal(10, after.Single(s => s.Name == "drakkar_executor_tasks_total" && s.Labels["status"] == "completed").Value);
        Assert.Equal(10, Sum(after, "drakkar_tasks_precomputed_total"));

        // The worker is idle: nothing but the Redis client's own connection events tell it the server went away.
        _redis.Stop();
        var outage = await Eventually.Get(() => TryGet($"{baseUrl}/readyz"), r => r?.Status == HttpStatusCode.ServiceUnavailable, Deadline,
            "/readyz 503 while Redis is down");
        Assert.Contains("sink redis:cache is not connected", outage!.Value.Body);
        Assert.Equal((HttpStatusCode.OK, "ok"), Trimmed(TryGet($"{baseUrl}/healthz")));

        _redis.Start();
        await Eventually.True(() => TryGet($"{baseUrl}/readyz")?.Status == HttpStatusCode.OK, Deadline, "/readyz 200 once Redis is back");
        await TestWorker.ProduceAsync(_kafka.BootstrapServers, topic, 2, 10);
        await Eventually.True(() => Sum(Parse(Scrape(baseUrl).GetAwaiter().GetResult()), "drakkar_sink_payloads_delivered_total") == 20, Deadline,
            "the messages after the outage delivered");
        // The restarted server kept nothing (no append-only file): every key it holds came after the outage.
        using var client = new Resp(_redis.Port);
        Assert.Equal("10", client.Call("DBSIZE"));
    }

    /// <summary>
    /// An HTTP sink (like PostgreSQL's pool) holds no standing connection, so only its circuit shows that its
    /// destination is down: the worker was reported ready all through such an outage.
    /// </summary>
    [Fact]
    public async Task A_sink_whose_circuit_is_open_keeps_the_worker_not_ready_until_its_destination_answers_again()
    {
        using var receiver = new HttpReceiver();
        receiver.RespondWith(503);
        var topic = _kafka.CreateTopic("ops-http-outage");
        var port = FreePort.Next();
        var config = WithMetrics(topic, "ops-http-outage", port, c =>
        {
            c.Sinks.Http["hook"] = new HttpSinkConfig { Url = receiver.Url + "hook" };
            c.Sinks.CircuitBreaker = new CircuitBreakerConfig { FailureThreshold = 1, CooldownSeconds = 1 };
        });
        await using var worker = await TestWorker.StartAsync(new HttpHandler(), config);
        var baseUrl = $"http://127.0.0.1:{port}";
        await Eventually.True(() => TryGet($"{baseUrl}/readyz")?.Status == HttpStatusCode.OK, Deadline, "/readyz 200 after the first poll");

        await TestWorker.ProduceAsync(_kafka.BootstrapServers, topic, 1, 1);
        var outage = await Eventually.Get(() => TryGet($"{baseUrl}/readyz"), r => r?.Status == HttpStatusCode.ServiceUnavailable, Deadline,
            "/readyz 503 while the HTTP destination answers 503");
        Assert.Contains("sink http:hook is unreachable: its circuit is", outage!.Value.Body, StringComparison.Ordinal);
        Assert.Equal((HttpStatusCode.OK, "ok"), Trimmed(TryGet($"{baseUrl}/healthz")));
        // The held payload is in flight, and the gauge says so (before, only the debug UI's /api/state did).
        Assert.Equal(1, Sum(Parse(await Scrape(baseUrl)), "drakkar_sink_payloads_in_flight"));

        receiver.RespondWith(200);
        await Eventually.True(() => TryGet($"{baseUrl}/readyz")?.Status == HttpStatusCode.OK, Deadline, "/readyz 200 once the destination answers");
        await Eventually.True(() => Sum(Parse(Scrape(baseUrl).GetAwaiter().GetResult()), "drakkar_sink_payloads_in_flight") == 0, Deadline,
            "nothing in flight once delivered");
        Assert.Contains(receiver.Requests, request => request.Status == 200 && request.Path == "/hook");
    }

    private sealed class HttpHandler : DrakkarHandler
    {
        protected internal override IReadOnlyList<SinkDeclaration> DeclaredSinks => [new SinkDeclaration(SinkKind.Http, "hook")];

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("ops"))
            {
                Precomputed = new PrecomputedResult($"{m.Offset}\n"),
                SourceOffsets = [m.Offset],
            })]);

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group) =>
            ValueTask.FromResult<CollectResult?>(new CollectResult { Http = { HttpPayload.Of(Reading.Sample((int)group.Message.Offset)) } });
    }

    [Fact]
    public async Task The_endpoint_answers_only_GET_on_known_paths_and_serves_prometheus_content_type()
    {
        var topic = _kafka.CreateTopic("ops-paths");
        var port = FreePort.Next();
        var config = WithMetrics(topic, "ops-paths", port);
        var handler = new CachingHandler(declareRedis: false);
        handler.ReleaseOnReady();
        await using var worker = await TestWorker.StartAsync(handler, config);

        using var metrics = await _http.GetAsync($"http://127.0.0.1:{port}/metrics?name[]=x");
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", metrics.Content.Headers.ContentType!.ToString());
        var exported = await metrics.Content.ReadAsStringAsync();
        Assert.NotEmpty(Parse(exported));
        // The released version (the project's <Version>), not the four-part assembly version.
        Assert.Matches("""drakkar_worker_info\{worker_id="[^"]*",version="\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?",""", exported);

        // A worker with nothing to consume idles, and Python Drakkar's counter says so (sampled every 100 ms).
        await Eventually.True(() => worker.Metrics.ConsumerIdleSeconds.Value() >= 0.3, TimeSpan.FromSeconds(10), "idle seconds counted");
        Assert.Matches(@"drakkar_consumer_idle_seconds_total \d", await _http.GetStringAsync($"http://127.0.0.1:{port}/metrics"));

        using var missing = await _http.GetAsync($"http://127.0.0.1:{port}/nope");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var post = await _http.PostAsync($"http://127.0.0.1:{port}/metrics", new StringContent("x"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
    }

    [Fact]
    public async Task A_port_already_in_use_stops_startup_with_a_clear_error_before_any_sink_connects()
    {
        using var occupant = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;
        // The Redis sink's server: a listener that only counts connections (the kernel accepts them into its backlog).
        using var sinkServer = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        sinkServer.Start();
        var topic = _kafka.CreateTopic("ops-busy");
        var config = WithMetrics(topic, "ops-busy", port, c =>
        {
            c.Sinks.Redis["cache"] = new RedisSinkConfig { Url = $"redis://127.0.0.1:{((IPEndPoint)sinkServer.LocalEndpoint).Port}" };
        });
        var handler = new CachingHandler();
        handler.ReleaseOnReady();
        var error = await Assert.ThrowsAsync<Drakkar.Hosting.WorkerStartupException>(() => TestWorker.StartAsync(handler, config));
        Assert.Contains($"127.0.0.1:{port}", error.Message);
        Assert.Contains("metrics.port", error.Message);
        // The port is taken before the sinks connect: a worker that cannot serve its probes touches nothing.
        Assert.False(sinkServer.Pending(), "the Redis sink connected before the metrics port was checked");
    }

    /// <summary>A worker's configuration with the metrics endpoint on 127.0.0.1:<paramref name="port"/>.</summary>
    private DrakkarConfig WithMetrics(string topic, string group, int port, Action<DrakkarConfig>? more = null) =>
        TestWorker.Config(_kafka.BootstrapServers, topic, group, c =>
        {
            c.Metrics.Enabled = true;
            c.Metrics.Host = "127.0.0.1";
            c.Metrics.Port = port;
            more?.Invoke(c);
        });

    private (HttpStatusCode Status, string Body)? TryGet(string url)
    {
        try
        {
            using var response = _http.GetAsync(url).GetAwaiter().GetResult();
            return (response.StatusCode, response.Content.ReadAsStringAsync().GetAwaiter().GetResult());
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static (HttpStatusCode, string)? Trimmed((HttpStatusCode Status, string Body)? response) =>
        response is { } r ? (r.Status, r.Body.Trim()) : null;

    private Task<string> Scrape(string baseUrl) => _http.GetStringAsync($"{baseUrl}/metrics");

    private static IReadOnlyList<PrometheusSample> Parse(string text) => PrometheusText.Parse(text);

    private static double Sum(IEnumerable<PrometheusSample> samples, string name) => samples.Where(s => s.Name == name).Sum(s => s.Value);

    /// <summary>One precomputed task per message; each message completes with a Redis payload.</summary>
    private sealed class CachingHandler(bool declareRedis = true) : DrakkarHandler
    {
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void ReleaseOnReady() => _ready.TrySetResult();

        protected internal override IReadOnlyList<SinkDeclaration> DeclaredSinks =>
            declareRedis ? [new SinkDeclaration(SinkKind.Redis, "cache")] : [];

        public override async ValueTask OnReady(DrakkarConfig config, NpgsqlDataSource? postgres) => await _ready.Task;

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("ops"))
            {
                Precomputed = new PrecomputedResult($"{m.Partition}:{m.Offset}\n"),
                SourceOffsets = [m.Offset],
            })]);

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group) =>
            ValueTask.FromResult<CollectResult?>(declareRedis
                ? new CollectResult { Redis = { RedisPayload.Of($"{group.Message.Partition}:{group.Message.Offset}", Reading.Sample((int)group.Message.Offset)) } }
                : null);
    }
}
