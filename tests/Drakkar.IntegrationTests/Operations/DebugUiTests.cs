using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Pipeline;
using Drakkar.IntegrationTests.Support;
using Microsoft.Data.Sqlite;

namespace Drakkar.IntegrationTests.Operations;

/// <summary>The flight recorder and the debug web UI of real workers (debug.*; docs/debug-ui.md).</summary>
[Collection(KafkaCollection.Name)]
public sealed class DebugUiTests(KafkaBroker kafka) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-debug-ui-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task The_recorder_database_holds_the_runs_events_with_retention_applied()
    {
        var topic = kafka.CreateTopic("debug-recorder", partitions: 2);
        var config = TestWorker.Config(kafka.BootstrapServers, topic, "debug-recorder", c =>
        {
            c.Debug.Enabled = true;
            c.Debug.Port = FreePort.Next();
            c.Debug.DbDir = _dir;
            c.Debug.FlushIntervalSeconds = 1;
            c.Debug.RetentionMaxEvents = 100;
            c.Debug.OutputMinDurationMs = 0;
        });
        var handler = new RecordingHandler(realProcesses: true);
        string database;
        await using (var worker = await TestWorker.StartAsync(handler, config))
        {
            database = worker.Debug!.Recorder.DatabasePath!;
            await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 2, 200);
            await Eventually.True(() => handler.Settled.Count == 200, Deadline, "200 messages settled");
            await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, "debug-recorder", 2).Sum() == 200, Deadline, "offsets committed");
            await worker.StopAsync();
        }

        // 200 finished tasks, consumed ranges, commits and the rebalance: well over 100, so retention cut the oldest.
        using var db = new SqliteConnection($"Data Source={database};Mode=ReadOnly");
        db.Open();
        Assert.Equal(100L, Scalar(db, "SELECT count(*) FROM events"));
        var (first, last) = ((long)Scalar(db, "SELECT min(seq) FROM events")!, (long)Scalar(db, "SELECT max(seq) FROM events")!);
        Assert.Equal(99, last - first); // the newest 100, without gaps
        Assert.True(last > 200, $"more than 200 events recorded, the oldest deleted (kept {first}..{last})");
        // What the tail of the run holds: finished tasks with their output and exit code, and the final commits.
        var finished = Scalar(db, "SELECT count(*) FROM events WHERE kind = 'task_finished' AND exit_code = 0 AND stdout LIKE '%:%'");
        Assert.True((long)finished! > 0, "finished tasks with their stdout");
        // Each task event names its source partition: an offset alone does not say which message it was.
        Assert.Equal(0L, Scalar(db, "SELECT count(*) FROM events WHERE kind = 'task_finished' AND partition IS NULL"));
        var committed = Rows(db, "SELECT partition, max(offset) FROM events WHERE kind = 'committed' GROUP BY partition");
        Assert.Equal([(0L, 100L), (1L, 100L)], committed);
        Assert.Equal(1L, Scalar(db, "SELECT count(*) FROM worker_config WHERE worker_id = 'test-worker' AND config_yaml LIKE '%debug:%'"));
    }

    private sealed class ReadyFlagHandler : DrakkarHandler
    {
        public bool Ready { get; private set; }

        public override ValueTask OnReady(DrakkarConfig config, Npgsql.NpgsqlDataSource? postgres)
        {
            Ready = true;
            return ValueTask.CompletedTask;
        }

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    [Fact]
    public async Task A_debug_port_in_use_stops_the_worker_before_its_sinks_and_consumer_start()
    {
        using var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var topic = kafka.CreateTopic("debug-port-taken", partitions: 1);
        var config = TestWorker.Config(kafka.BootstrapServers, topic, "debug-port-taken", c =>
        {
            c.Debug.Enabled = true;
            c.Debug.Port = port;
            c.Debug.DbDir = _dir;
        });
        var handler = new ReadyFlagHandler();

        var error = await Assert.ThrowsAsync<Drakkar.Hosting.WorkerStartupException>(() => TestWorker.StartAsync(handler, config));

        Assert.Contains($"cannot listen on 127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.Contains("debug.port", error.Message, StringComparison.Ordinal);
        // The port is checked first: the handler was never made ready, so no sink connected and no consumer joined.
        Assert.False(handler.Ready);
    }

    private sealed class FailingReadyHandler : DrakkarHandler
    {
        public override ValueTask OnReady(DrakkarConfig config, Npgsql.NpgsqlDataSource? postgres) =>
            throw new InvalidOperationException("the lookup table is missing");

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    /// <summary>
    /// The recorder's file is made before the sinks connect and the handler gets ready; a start that fails after it
    /// used to leave the file behind (256 KiB), one per attempt of a worker restarted in a loop.
    /// </summary>
    [Fact]
    public async Task A_start_that_fails_after_the_recorder_opened_its_file_leaves_no_file()
    {
        var topic = kafka.CreateTopic("debug-failed-start", partitions: 1);
        var config = TestWorker.Config(kafka.BootstrapServers, topic, "debug-failed-start", c =>
        {
            c.Debug.Enabled = true;
            c.Debug.Port = FreePort.Next();
            c.Debug.DbDir = _dir;
        });

        for (var attempt = 0; attempt < 2; attempt++)
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => TestWorker.StartAsync(new FailingReadyHandler(), config));
            Assert.Contains("the lookup table is missing", error.ToString(), StringComparison.Ordinal);
        }

        Assert.Empty(Directory.GetFiles(_dir, "drakkar-recorder-*"));
    }

    [Fact]
    public async Task With_an_auth_token_every_request_needs_it_by_header_query_or_cookie()
    {
        var port = FreePort.Next();
        await using var worker = await StartUiOnlyAsync("debug-auth", port, authToken: "s3cret-token");
        var baseUrl = $"http://127.0.0.1:{port}";

        foreach (var path in new[] { "/", "/api/state", "/api/tasks", "/api/config", "/api/stream" })
            Assert.Equal(HttpStatusCode.Unauthorized, (await _http.GetAsync(baseUrl + path)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _http.GetAsync(baseUrl + "/api/state?token=wrong")).StatusCode);
        // Whatever the method: without the token not even which methods exist is answered (405 only with it).
        Assert.Equal(HttpStatusCode.Unauthorized, (await _http.GetAsync(baseUrl + "/api/probe")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _http.DeleteAsync(baseUrl + "/api/state")).StatusCode);
        using var probeWithToken = new HttpRequestMessage(HttpMethod.Get, baseUrl + "/api/probe") { Headers = { { "Authorization", "Bearer s3cret-token" } } };
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await _http.SendAsync(probeWithToken)).StatusCode);
        using var deleteWithToken = new HttpRequestMessage(HttpMethod.Delete, baseUrl + "/api/state") { Headers = { { "Authorization", "Bearer s3cret-token" } } };
        var deleted = await _http.SendAsync(deleteWithToken);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, deleted.StatusCode);
        // It names every method served (it said "only GET", though HEAD and the probe's POST are served too).
        Assert.Equal("only GET and HEAD are served here (and POST on /api/probe)\n", await deleted.Content.ReadAsStringAsync());

        using var bearer = new HttpRequestMessage(HttpMethod.Get, baseUrl + "/api/state") { Headers = { { "Authorization", "Bearer s3cret-token" } } };
        var state = await _http.SendAsync(bearer);
        Assert.Equal(HttpStatusCode.OK, state.StatusCode);
        Assert.Equal("test-worker", (string?)JsonNode.Parse(await state.Content.ReadAsStringAsync())!["worker"]!["worker_id"]);

        // ?token= once sets a cookie that later requests (the page's fetches and event stream) carry, and sends the
        // browser back to the page without the token in its address.
        using var noRedirects = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false });
        var page = await noRedirects.GetAsync(baseUrl + "/?token=s3cret-token");
        Assert.Equal(HttpStatusCode.SeeOther, page.StatusCode);
        Assert.Equal("/", page.Headers.Location?.OriginalString);
        var cookie = Assert.Single(page.Headers.GetValues("Set-Cookie"));
        // Named after this port, derived from the token under a key of this process, and expiring: another service on
        // this host that receives it learns nothing about the token.
        Assert.StartsWith($"drakkar_debug_{port}=", cookie, StringComparison.Ordinal);
        Assert.Contains("; Max-Age=43200;", cookie, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret-token", cookie, StringComparison.Ordinal);
        using var withCookie = new HttpRequestMessage(HttpMethod.Get, baseUrl + "/api/config") { Headers = { { "Cookie", cookie.Split(';')[0] } } };
        var masked = await _http.SendAsync(withCookie);
        Assert.Equal(HttpStatusCode.OK, masked.StatusCode);
        Assert.DoesNotContain("s3cret-token", await masked.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_page_whose_session_ended_with_the_workers_run_says_to_open_it_again_with_the_token()
    {
        var port = FreePort.Next();
        await using var browser = await HeadlessChromium.StartAsync();
        await using (var first = await StartUiOnlyAsync("debug-session-1", port, authToken: "run-token"))
        {
            await browser.NavigateAsync($"http://127.0.0.1:{port}/?token=run-token");
            await WaitForAsync(browser, "document.querySelectorAll('#partitions tr[data-partition]').length === 1");
        }

        // The same worker started again: its sessions are new, so the page's cookie (and its event stream) is refused.
        // The page used to say only "live updates refused; retrying in 10 s", forever.
        await using var second = await StartUiOnlyAsync("debug-session-2", port, authToken: "run-token");
        // Null-safe: the condition may be evaluated while a navigation has the document empty.
        await WaitForAsync(browser, "document.getElementById('status')?.textContent.includes('open the page again with ?token=') === true");

        await browser.NavigateAsync($"http://127.0.0.1:{port}/?token=run-token");
        await WaitForAsync(browser, "document.getElementById('identity')?.textContent.includes('debug-session-2') === true");
    }

    [Fact]
    public async Task Without_a_token_a_request_addressed_to_another_name_is_refused_as_dns_rebinding_would_send_it()
    {
        var port = FreePort.Next();
        await using var worker = await StartUiOnlyAsync("debug-rebinding", port, authToken: "");
        var baseUrl = $"http://127.0.0.1:{port}";

        // A page on attacker.example whose name now resolves to 127.0.0.1: the browser sends its own name as Host.
        foreach (var path in new[] { "/api/state", "/api/config", "/api/stream", "/" })
        {
            using var rebound = new HttpRequestMessage(HttpMethod.Get, baseUrl + path) { Headers = { Host = $"attacker.example:{port}" } };
            var refused = await _http.SendAsync(rebound, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.MisdirectedRequest, refused.StatusCode);
            Assert.Contains("debug.debug_url", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using var local = new HttpRequestMessage(HttpMethod.Get, baseUrl + "/api/state") { Headers = { Host = $"localhost:{port}" } };
        var state = await _http.SendAsync(local);
        Assert.Equal(HttpStatusCode.OK, state.StatusCode);
        Assert.Equal("test-worker", (string?)JsonNode.Parse(await state.Content.ReadAsStringAsync())!["worker"]!["worker_id"]);
    }

    [Fact]
    public async Task The_probe_action_runs_records_through_a_handler_of_its_own_and_delivers_and_commits_nothing()
    {
        var topic = kafka.CreateTopic("debug-probe", partitions: 1);
        var port = FreePort.Next();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, "debug-probe", c =>
        {
            c.Debug.Enabled = true;
            c.Debug.Port = port;
            c.Debug.DbDir = "";
        });
        var handler = new RecordingHandler(realProcesses: true);
        var probeHandlers = new List<RecordingHandler>();
        await using var worker = await TestWorker.StartAsync(handler, config, probeHandler: () =>
        {
            var probing = new RecordingHandler(realProcesses: true);
            probeHandlers.Add(probing);
            return probing;
        });
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 4);
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, "debug-probe", 1)[0] == 4, Deadline, "4 offsets committed");
        var probeUrl = $"http://127.0.0.1:{port}/api/probe";

        var probed = await _http.PostAsync(probeUrl + "?partition=0&offset=1&count=2", null);

        Assert.Equal(HttpStatusCode.OK, probed.StatusCode);
        var report = JsonNode.Parse(await probed.Content.ReadAsStringAsync())!;
        Assert.Equal([1L, 2L], report["messages"]!.AsArray().Select(m => (long)m!["offset"]!).ToArray());
        Assert.Equal(0, (int)report["unfinished"]!);
        // A fresh handler settled them; the worker's handler saw each offset once, and the group's offsets did not move.
        var probing = Assert.Single(probeHandlers);
        Assert.Equal([(0, 1L), (0, 2L)], probing.Settled.Keys.Order().ToArray());
        Assert.All(handler.Settled.Values, n => Assert.Equal(1, n));
        Assert.Equal(4, TestWorker.Committed(kafka.BootstrapServers, topic, "debug-probe", 1)[0]);

        // Refusals, each saying why.
        Assert.Equal(HttpStatusCode.BadRequest, (await _http.PostAsync(probeUrl + "?partition=x&offset=1", null)).StatusCode);
        var past = await _http.PostAsync(probeUrl + "?partition=0&offset=99", null);
        Assert.Equal(HttpStatusCode.NotFound, past.StatusCode);
        Assert.Contains("no message at", await past.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await _http.GetAsync(probeUrl + "?partition=0&offset=1")).StatusCode);
        // Another site cannot make an operator's browser start a probe.
        using var foreign = new HttpRequestMessage(HttpMethod.Post, probeUrl + "?partition=0&offset=1") { Headers = { { "Origin", "https://evil.example" } } };
        Assert.Equal(HttpStatusCode.Forbidden, (await _http.SendAsync(foreign)).StatusCode);
        Assert.Single(probeHandlers);
    }

    /// <summary>
    /// A worker that takes over a partition with nothing new on it used to show committed -1 and the whole topic as
    /// lag until the next message, while the group had committed everything.
    /// </summary>
    [Fact]
    public async Task A_partition_with_no_message_since_its_assignment_shows_the_groups_committed_offset_and_no_lag()
    {
        var topic = kafka.CreateTopic("debug-committed", partitions: 1);
        const string group = "debug-committed";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 5);
        await using (var earlier = await TestWorker.StartAsync(new RecordingHandler(realProcesses: false), TestWorker.Config(kafka.BootstrapServers, topic, group)))
        {
            await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, 1)[0] == 5, Deadline, "the first worker committed all 5");
            await earlier.StopAsync();
        }

        var port = FreePort.Next();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c =>
        {
            c.Debug.Enabled = true;
            c.Debug.Port = port;
            c.Debug.DbDir = "";
        });
        await using var worker = await TestWorker.StartAsync(new RecordingHandler(realProcesses: false), config);
        var partition = await Eventually.Get(() =>
            {
                var state = JsonNode.Parse(_http.GetStringAsync($"http://127.0.0.1:{port}/api/state").GetAwaiter().GetResult())!;
                return state["partitions"]!.AsArray().FirstOrDefault();
            },
            p => p is not null && (long)p["high_watermark"]! == 5, Deadline, "the partition assigned, with its high watermark");

        Assert.Equal((5L, -1L, 0L), ((long)partition!["committed"]!, (long)partition["last_consumed"]!, (long)partition["lag"]!));
    }

    /// <summary>
    /// librdkafka's high watermark moves only with fetches, so a partition paused by backpressure (or a sink's outage)
    /// showed the lag it had when it paused while its backlog grew.
    /// </summary>
    [Fact]
    public async Task A_paused_partition_shows_the_backlog_that_arrives_while_it_is_paused()
    {
        var topic = kafka.CreateTopic("debug-paused-lag", partitions: 1);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 40);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new RecordingHandler(realProcesses: false) { BeforeArrange = () => gate.Task };
        var port = FreePort.Next();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, "debug-paused-lag", c =>
        {
            c.Executor.MaxExecutors = 1;
            c.Executor.WindowSize = 5;
            c.Debug.Enabled = true;
            c.Debug.Port = port;
            c.Debug.DbDir = "";
        });
        await using var worker = await TestWorker.StartAsync(handler, config);
        JsonNode State() => JsonNode.Parse(_http.GetStringAsync($"http://127.0.0.1:{port}/api/state").GetAwaiter().GetResult())!;
        JsonNode? Partition() => State()["partitions"]!.AsArray().FirstOrDefault();
        await Eventually.Get(Partition, p => p is not null && (long)p["high_watermark"]! == 40, Deadline, "the partition assigned, its first 40 messages seen");
        await Eventually.True(() => (bool)State()["executor"]!["paused"]!, Deadline, "consumption paused behind the held Arrange");
        await Task.Delay(500); // the soft pause has become a librdkafka pause: the partition is no longer fetched

        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 60);

        var paused = await Eventually.Get(Partition, p => (long)p!["high_watermark"]! == 100,
            Drakkar.Kafka.SourceConsumer.BrokerWatermarkInterval * 4, "the 60 messages that arrived during the pause counted");
        Assert.Equal(100L, (long)paused!["lag"]!);
        Assert.True((bool)State()["executor"]!["paused"]!);
        gate.SetResult();
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, "debug-paused-lag", 1)[0] == 100, Deadline, "all 100 committed once released");
    }

    [Fact]
    public async Task Connections_held_open_without_a_request_do_not_lock_an_operator_out()
    {
        var port = FreePort.Next();
        await using var worker = await StartUiOnlyAsync("debug-idle-flood", port, authToken: "");
        var idle = new List<System.Net.Sockets.TcpClient>();
        try
        {
            for (var i = 0; i < Drakkar.Diagnostics.Ui.DebugServer.MaxConnections + 10; i++)
            {
                var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                idle.Add(client);
            }
            await Task.Delay(200); // every idle connection accepted and waiting for its request head

            var state = await _http.GetAsync($"http://127.0.0.1:{port}/api/state");

            Assert.Equal(HttpStatusCode.OK, state.StatusCode);
            var text = await state.Content.ReadAsStringAsync();
            Assert.Equal("test-worker", (string?)JsonNode.Parse(text)!["worker"]!["worker_id"]);
            // Times read as written ("…+00:00"), not escaped for HTML the JSON never goes into.
            Assert.Contains("+00:00\"", text, StringComparison.Ordinal);
            Assert.DoesNotContain("\\u002B", text, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var client in idle) client.Dispose();
        }
    }

    [Fact]
    public async Task Open_live_streams_do_not_lock_an_operator_out()
    {
        var port = FreePort.Next();
        await using var worker = await StartUiOnlyAsync("debug-stream-flood", port, authToken: "");
        var streams = new List<System.Net.Sockets.TcpClient>();
        var statuses = new List<string>();
        try
        {
            // As many live pages as the server has connections: each asks for the event stream and keeps it open.
            for (var i = 0; i < Drakkar.Diagnostics.Ui.DebugServer.MaxConnections; i++)
            {
                var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                streams.Add(client);
                var stream = client.GetStream();
                await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
                statuses.Add(await StatusLineAsync(stream));
            }

            var state = await _http.GetAsync($"http://127.0.0.1:{port}/api/state");

            Assert.Equal(HttpStatusCode.OK, state.StatusCode);
            Assert.Equal("test-worker", (string?)JsonNode.Parse(await state.Content.ReadAsStringAsync())!["worker"]!["worker_id"]);
            // The streams beyond the cap were refused with a status a browser's EventSource retries later, not left hanging.
            Assert.Equal(Drakkar.Diagnostics.Ui.DebugServer.MaxStreams, statuses.Count(s => s.StartsWith("HTTP/1.1 200", StringComparison.Ordinal)));
            Assert.All(statuses.Skip(Drakkar.Diagnostics.Ui.DebugServer.MaxStreams), s => Assert.StartsWith("HTTP/1.1 503", s, StringComparison.Ordinal));

            // A closed stream frees its place for the next page.
            streams[0].Dispose();
            var reopened = "";
            for (var attempt = 0; attempt < 100 && !reopened.StartsWith("HTTP/1.1 200", StringComparison.Ordinal); attempt++)
            {
                await Task.Delay(50);
                using var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                var stream = client.GetStream();
                await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
                reopened = await StatusLineAsync(stream);
            }
            Assert.StartsWith("HTTP/1.1 200", reopened, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var client in streams) client.Dispose();
        }
    }

    private static async Task<string> StatusLineAsync(System.Net.Sockets.NetworkStream stream)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var line = new StringBuilder();
        var one = new byte[1];
        while (await stream.ReadAsync(one, timeout.Token) == 1 && one[0] != '\n') line.Append((char)one[0]);
        return line.ToString().TrimEnd('\r');
    }

    [Fact]
    public async Task The_sample_shows_its_partitions_and_a_task_that_just_ran_in_a_headless_browser()
    {
        var debugPort = FreePort.Next();
        var corpus = Path.Combine(_dir, "corpus.txt");
        await File.WriteAllTextAsync(corpus, "alpha\nneedle in a haystack\nomega\n");
        var config = Path.Combine(_dir, "debug.yaml");
        await File.WriteAllTextAsync(config, $$"""
            kafka:
              brokers: embedded
              source_topic: ui-requests
              consumer_group: ui-sample
            executor:
              binary_path: /bin/grep
            metrics:
              enabled: false
            logging:
              format: console
            sinks:
              filesystem:
                results:
                  base_path: {{_dir}}
                  ui_url: http://files.example/results
            debug:
              enabled: true
              port: {{debugPort}}
              auth_token: ui-token
              db_dir: {{_dir}}/recorder
              output_min_duration_ms: 0
              ws_min_duration_ms: 0
              custom_links:
                - name: Runbook
                  url: "http://runbook.example/{worker_id}"
            """);
        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["--config", config], _dir);
        await Eventually.True(() => sample.Stderr.Contains("is ready", StringComparison.Ordinal), Deadline, () => $"the ready line (stderr: {sample.Stderr})");
        var bootstrap = EmbeddedBootstrap(sample.Stderr);
        await TestWorker.ProduceAsync(bootstrap, "ui-requests", 4, 8,
            i => $$"""{"request_id":"req-{{i}}","pattern":"needle","path":"{{corpus}}"}""");
        var results = Path.Combine(_dir, "search-results.jsonl");
        await Eventually.True(() => File.Exists(results) && File.ReadAllLines(results).Length == 8, Deadline, "8 results written");

        await using var browser = await HeadlessChromium.StartAsync();
        await browser.NavigateAsync($"http://127.0.0.1:{debugPort}/?token=ui-token");
        // The page's script renders what its fetches and its event stream bring: wait until it has.
        await WaitForAsync(browser, "document.querySelectorAll('#partitions tr[data-partition]').length === 4 && " +
            "document.querySelectorAll('#recent-tasks tr[data-task-id]').length > 0 && document.getElementById('live').children.length > 0");
        var dom = await browser.DomAsync();
        var screenshot = Path.Combine(AppContext.BaseDirectory, "artifacts", "debug-ui.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await browser.ScreenshotAsync(screenshot);

        for (var p = 0; p < 4; p++) Assert.Contains($"data-partition=\"{p}\"", dom);
        Assert.Matches("data-task-id=\"search-[^\"]+\"", dom);
        Assert.Contains("2:needle in a haystack", dom); // grep -n's stdout of a task that just ran, rendered by the page
        Assert.Contains("http://files.example/results", dom);
        Assert.Contains("http://runbook.example/", dom);
        Assert.DoesNotContain("ui-token", (string?)(await browser.EvaluateAsync("document.getElementById('config').textContent")) ?? "");
        Assert.True(new FileInfo(screenshot).Length > 10_000, "a screenshot with content");

        // The probe action, from the page: partition 0's first record (req-0) through a fresh handler; the result
        // file it would be written to still holds the 8 lines the worker wrote.
        await browser.EvaluateAsync("document.querySelector('#probe input[name=partition]').value = '0'; " +
            "document.querySelector('#probe input[name=offset]').value = '0'; document.querySelector('#probe button').click(); true");
        await WaitForAsync(browser, "document.getElementById('probe-status').textContent.startsWith('done')");
        var probed = (string?)await browser.EvaluateAsync("document.getElementById('probe-result').textContent") ?? "";
        Assert.Contains("\"instance\": \"results\"", probed, StringComparison.Ordinal);
        Assert.Contains("req-0", probed, StringComparison.Ordinal);
        Assert.Equal(8, File.ReadAllLines(results).Length);

        sample.Signal(Posix.SigTerm);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)), $"still running after SIGTERM; stderr:\n{sample.Stderr}");
        Assert.Equal(0, sample.ExitCode);
    }

    /// <summary>A worker with the UI on <paramref name="port"/> and the recorder in memory only, on a topic of its own.</summary>
    private Task<Drakkar.Hosting.WorkerHost> StartUiOnlyAsync(string name, int port, string authToken)
    {
        var topic = kafka.CreateTopic(name, partitions: 1);
        var config = TestWorker.Config(kafka.BootstrapServers, topic, name, c =>
        {
            c.Debug.Enabled = true;
            c.Debug.Port = port;
            c.Debug.DbDir = "";
            c.Debug.AuthToken = authToken;
        });
        return TestWorker.StartAsync(new RecordingHandler(realProcesses: false), config);
    }

    private static async Task WaitForAsync(HeadlessChromium browser, string condition)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (DateTime.UtcNow < deadline)
        {
            if (await browser.EvaluateAsync(condition) is JsonValue value && value.GetValue<bool>()) return;
            await Task.Delay(100);
        }
        throw new TimeoutException($"the page never satisfied: {condition}\n{await browser.DomAsync()}");
    }

    private static string EmbeddedBootstrap(string log)
    {
        const string marker = "Embedded Kafka broker at ";
        var at = log.IndexOf(marker, StringComparison.Ordinal);
        Assert.True(at >= 0, "the embedded broker's address is logged");
        var rest = log[(at + marker.Length)..];
        return rest[..rest.IndexOf(';')];
    }

    private static object? Scalar(SqliteConnection db, string sql)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static List<(long, long)> Rows(SqliteConnection db, string sql)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<(long, long)>();
        while (reader.Read()) rows.Add((reader.GetInt64(0), reader.GetInt64(1)));
        return rows;
    }
}
