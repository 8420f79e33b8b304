using System.Text;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Drakkar.Sinks.Filesystem;
using Drakkar.Sinks.Http;
using Microsoft.Extensions.Logging.Abstractions;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

[Collection(SinksCollection.Name)]
public sealed class HttpSinkTests(HttpReceiver receiver)
{
    private (SinkManager Manager, RecordingDlq Dlq, List<DeliveryError> Errors) Start(HttpSinkConfig config, Func<string, string?>? environment = null,
        SinkBatching? batching = null)
    {
        var masker = new SinkSecretMasker();
        var dlq = new RecordingDlq();
        var errors = new List<DeliveryError>();
        var manager = new SinkManager([new HttpSink("hook", config, masker, environment)], dlq, new SinkManagerOptions
        {
            OnDeliveryError = e => { errors.Add(e); return ValueTask.FromResult(DeliveryAction.Dlq); },
            Batching = (_, _) => batching ?? SinkBatching.Default,
        }, new DrakkarMetrics(), NullLoggerFactory.Instance, masker);
        manager.StartAsync(default).GetAwaiter().GetResult();
        return (manager, dlq, errors);
    }

    [Fact]
    public async Task Each_payload_is_one_json_request_with_the_configured_method_and_expanded_headers()
    {
        receiver.RespondWith(200);
        var path = $"/notify-{Guid.NewGuid():N}";
        var (manager, dlq, _) = Start(new HttpSinkConfig
        {
            Url = receiver.Url.TrimEnd('/') + path,
            Method = "put",
            Headers = { ["Authorization"] = "Bearer ${HOOK_TOKEN}", ["X-Team"] = "${HOOK_TEAM:-search}" },
        }, name => name == "HOOK_TOKEN" ? "tok-123456" : null);

        await manager.DeliverAsync(Http(3), Origin(), default);

        var requests = receiver.Requests.Where(r => r.Path == path).ToArray();
        Assert.Equal(3, requests.Length);
        Assert.All(requests, r =>
        {
            Assert.Equal("PUT", r.Method);
            Assert.Equal("Bearer tok-123456", r.Headers["Authorization"]);
            Assert.Equal("search", r.Headers["X-Team"]);
            Assert.StartsWith("application/json", r.Headers["Content-Type"]);
        });
        // A batch's requests go out concurrently, so they may arrive in any order: one request per payload is the promise.
        Assert.Equal(Enumerable.Range(0, 3).Select(i => PayloadData.Of(Reading.Sample(i)).ToJson()).Order(), requests.Select(r => r.Body).Order());
        Assert.Empty(dlq.Letters);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_payload_that_cannot_become_json_is_never_sent_and_its_failure_names_it()
    {
        receiver.RespondWith(200);
        var path = $"/nan-{Guid.NewGuid():N}";
        var (manager, dlq, errors) = Start(new HttpSinkConfig { Url = receiver.Url.TrimEnd('/') + path });
        var result = Http(1);
        result.Http.Add(HttpPayload.Of(new Gauge("g", double.NaN)));
        result.Http.Add(HttpPayload.Of(Reading.Sample(1)));

        await manager.DeliverAsync(result, Origin(), default);

        Assert.Equal([PayloadData.Of(Reading.Sample(0)).ToJson(), PayloadData.Of(Reading.Sample(1)).ToJson()],
            receiver.Requests.Where(r => r.Path == path).Select(r => r.Body).Order());
        Assert.Contains("payload 2 of 3 (Gauge) cannot be written as JSON: Gauge.Value is NaN", Assert.Single(errors).Error, StringComparison.Ordinal);
        Assert.Single(dlq.Letters);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_500_is_a_failure_with_status_and_body_excerpt_that_reaches_the_hook_and_the_dlq_without_the_token()
    {
        receiver.RespondWith(500);
        try
        {
            var (manager, dlq, errors) = Start(new HttpSinkConfig
            {
                Url = receiver.Url + "fail",
                // A plain header's value ("receiver") must stay readable in errors; only credentials are masked.
                Headers = { ["Authorization"] = "Bearer ${HOOK_TOKEN}", ["X-Team"] = "receiver" },
            }, _ => "tok-should-not-leak");

            await manager.DeliverAsync(Http(2), Origin(), default);

            var error = Assert.Single(errors);
            Assert.Equal(SinkKind.Http, error.SinkKind);
            Assert.Contains("HTTP 500", error.Error);
            Assert.Contains("receiver told to fail", error.Error);
            Assert.Equal(2, error.Payloads.Count);
            Assert.Contains("HTTP 500", Assert.Single(dlq.Letters).Error);
            Assert.DoesNotContain("tok-should-not-leak", error.Error);
            await manager.CloseAsync();
        }
        finally
        {
            receiver.RespondWith(200);
        }
    }

    [Theory]
    [InlineData(429)]
    [InlineData(503)]
    public async Task A_throttling_answer_with_Retry_After_is_waited_out_before_the_next_request(int status)
    {
        var path = $"/throttle-{status}-{Guid.NewGuid():N}";
        receiver.RespondWith(status, retryAfter: "2");
        try
        {
            var (manager, dlq, errors) = Start(new HttpSinkConfig { Url = receiver.Url.TrimEnd('/') + path, MaxRetries = 3 });
            var delivery = manager.DeliverAsync(Http(1), Origin(), default);
            await Eventually.True(() => receiver.Requests.Any(r => r.Path == path), TimeSpan.FromSeconds(10), "the first request");
            receiver.RespondWith(200);
            await delivery;

            // One throttled request, then nothing until its Retry-After ran out: no fast retries, no failure, no DLQ.
            var requests = receiver.Requests.Where(r => r.Path == path).ToArray();
            Assert.Equal([status, 200], requests.Select(r => r.Status));
            Assert.True(requests[1].ArrivedAt - requests[0].ArrivedAt >= TimeSpan.FromSeconds(1.8),
                $"the second request came {(requests[1].ArrivedAt - requests[0].ArrivedAt).TotalSeconds:0.00}s after the first");
            Assert.Empty(errors);
            Assert.Empty(dlq.Letters);
            await manager.CloseAsync();
        }
        finally
        {
            receiver.RespondWith(200);
        }
    }

    /// <summary>
    /// Each held group backs off its probes on its own, but with many groups held one was always due: the instance
    /// probed, re-opened its circuit and logged a failure every 0.5 s for the whole outage (96 trips a minute with 60
    /// groups). The instance's probes now back off together: 0.5 s, 1, 2, 4, then every 5 s.
    /// </summary>
    [Fact]
    public async Task Many_held_groups_probe_an_unreachable_receiver_no_more_often_than_one_group_would()
    {
        var path = $"/many-held-{Guid.NewGuid():N}";
        receiver.RespondWith(503);
        try
        {
            using var logs = new LogCapture();
            var masker = new SinkSecretMasker();
            var manager = new SinkManager([new HttpSink("hook", new HttpSinkConfig { Url = receiver.Url.TrimEnd('/') + path, MaxRetries = 0 }, masker)],
                new RecordingDlq(), new SinkManagerOptions { Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause } },
                new DrakkarMetrics(), logs, masker);
            await manager.StartAsync(default);
            // Groups arrive one every 0.2 s, as a stream does before consumption pauses, so their own schedules differ.
            var deliveries = new List<Task>();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            for (var i = 0; i < 40; i++)
            {
                deliveries.Add(manager.DeliverAsync(Http(1), Origin(offsets: i + 1), default).AsTask());
                await Task.Delay(TimeSpan.FromMilliseconds(200));
            }
            // On a loaded machine the 40 sends can take longer than the 10 s window (a negative delay threw).
            if (TimeSpan.FromSeconds(10) - clock.Elapsed is { Ticks: > 0 } rest) await Task.Delay(rest);
            var probes = logs.Containing("is still unreachable: probe").Length;
            receiver.RespondWith(200);
            await Task.WhenAll(deliveries).WaitAsync(TimeSpan.FromSeconds(30));
            await manager.CloseAsync();

            // 0.5 + 1 + 2 + 4 s, then every 5 s: about 5 failed probes in 10 s (one per 0.5 s or so was about 18).
            Assert.InRange(probes, 1, 8);
        }
        finally
        {
            receiver.RespondWith(200);
        }
    }

    [Fact]
    public async Task A_hold_whose_last_payloads_are_refused_at_a_probe_ends_without_saying_the_sink_is_back()
    {
        var path = $"/refused-{Guid.NewGuid():N}";
        receiver.RespondWith(500);
        try
        {
            using var logs = new LogCapture();
            var masker = new SinkSecretMasker();
            var dlq = new RecordingDlq();
            var manager = new SinkManager([new HttpSink("hook", new HttpSinkConfig { Url = receiver.Url.TrimEnd('/') + path, MaxRetries = 0 }, masker)], dlq,
                new SinkManagerOptions { Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause } }, new DrakkarMetrics(), logs, masker);
            await manager.StartAsync(default);
            var delivery = manager.DeliverAsync(Http(1), Origin(), default).AsTask();
            await Eventually.True(() => logs.Containing("probe 2 of a held group of 1 payload(s) failed (1 group(s) held)").Length > 0, TimeSpan.FromSeconds(10), logs.Text);

            // The receiver now refuses the payload itself: the next probe dead-letters it, and the hold ends.
            receiver.RespondWith(400);
            await delivery.WaitAsync(TimeSpan.FromSeconds(15));

            Assert.Single(dlq.Letters);
            Assert.Empty(logs.Containing("is back:"));
            Assert.Single(logs.Containing("no payload held any more, but the last held payloads were dead-lettered, not delivered"));
            // Each probe says which it is, instead of an "attempt 1" that never moves.
            Assert.Empty(logs.Containing("on attempt 1:").Skip(1));
            await manager.CloseAsync();
        }
        finally
        {
            receiver.RespondWith(200);
        }
    }

    [Fact]
    public async Task A_server_that_never_answers_fails_the_request_after_timeout_seconds()
    {
        // Accepts connections and reads nothing, answers nothing.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
        var (manager, dlq, errors) = Start(new HttpSinkConfig { Url = $"http://127.0.0.1:{port}/slow", TimeoutSeconds = 1 });

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await manager.DeliverAsync(Http(1), Origin(), default);

        // One try (the sink is not idempotent) that gives up after its 1 s, not the 30 s default.
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.9, 10);
        Assert.Contains($"POST http://127.0.0.1:{port}/slow (payload 1 of 1) timed out after 1s", Assert.Single(errors).Error);
        Assert.Single(dlq.Letters);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_payload_that_makes_the_endpoint_hang_while_others_are_answered_is_dead_lettered_not_held_forever()
    {
        // The endpoint answers everything but a request carrying r-13; the sink's own timeout_seconds (1 s) fires
        // long before attempt_timeout_seconds would. It used to count as an outage, held with no end.
        receiver.HangOn = "\"r-13\"";
        var (manager, dlq, _) = Start(new HttpSinkConfig { Url = receiver.Url + "hang", TimeoutSeconds = 1, MaxRetries = 0 },
            batching: SinkBatching.Default with { OnOutage = OutagePolicy.Pause });
        try
        {
            // Alone, the hanging request looks like an outage: held.
            var poison = manager.DeliverAsync(new CollectResult { Http = { HttpPayload.Of(Reading.Sample(13)) } }, Origin(offsets: 13), default).AsTask();
            await Eventually.True(() => manager.StatsOf("http", "hook").Errors >= 1, TimeSpan.FromSeconds(10), "the first timeout");
            Assert.False(poison.IsCompleted);

            // Others are answered meanwhile, so the next time r-13 times out it is its own fault.
            var healthy = manager.DeliverAsync(new CollectResult { Http = { HttpPayload.Of(Reading.Sample(1)) } }, Origin(offsets: 1), default).AsTask();
            await Task.WhenAll(poison, healthy).WaitAsync(TimeSpan.FromSeconds(30));

            var letter = Assert.Single(dlq.Letters);
            Assert.Equal(13, letter.Messages.Single().Offset);
            Assert.Contains("timed out after 1s (timeout_seconds)", letter.Error, StringComparison.Ordinal);
            Assert.Contains("other deliveries to this instance succeeded meanwhile, so these payloads are at fault", letter.Error, StringComparison.Ordinal);
            Assert.Equal(1, manager.StatsOf("http", "hook").Delivered);
            Assert.Contains(receiver.Requests, r => r.Path == "/hang" && r.Body.Contains("\"r-1\"", StringComparison.Ordinal));
        }
        finally
        {
            receiver.HangOn = null;
            await manager.CloseAsync();
        }
    }

    [Fact]
    public async Task A_batch_whose_every_request_timed_out_is_not_sent_again_hook_call_by_hook_call()
    {
        // Each request reaches the receiver, which never answers: without an Idempotency-Key none may be sent twice.
        receiver.HangOn = "\"x-batch-";
        var (manager, dlq, _) = Start(new HttpSinkConfig { Url = receiver.Url + "batch", TimeoutSeconds = 1 },
            batching: SinkBatching.Default with { Linger = TimeSpan.FromMilliseconds(300) });
        try
        {
            // Three hook calls, taken together into one batch by the linger.
            await Task.WhenAll(Enumerable.Range(1, 3).Select(i => manager.DeliverAsync(
                new CollectResult { Http = { HttpPayload.Of(Reading.Sample(i) with { Id = $"x-batch-{i}" }) } }, Origin(offsets: i), default).AsTask()))
                .WaitAsync(TimeSpan.FromSeconds(30));

            Assert.Equal(3, dlq.Letters.Count);
            var sent = receiver.Requests.Where(r => r.Path == "/batch").Select(r => r.Body).ToList();
            // The engine used to deliver each hook call again on its own when the whole batch failed: six requests.
            Assert.Equal(3, sent.Count);
            Assert.Equal(3, sent.Distinct().Count());
        }
        finally
        {
            receiver.HangOn = null;
            await manager.CloseAsync();
        }
    }

    [Theory]
    [InlineData("http://169.254.169.254/latest/meta-data/")]
    [InlineData("http://metadata.google.internal/computeMetadata/v1/")]
    [InlineData("http://100.100.100.200/")]
    [InlineData("http://[::ffff:169.254.169.254]/")]
    [InlineData("ftp://example.com/")]
    [InlineData("not a url")]
    public void Metadata_hosts_and_non_http_urls_are_refused(string url)
    {
        var error = Assert.Throws<SinkConfigurationException>(() => new HttpSink("hook", new HttpSinkConfig { Url = url }, new SinkSecretMasker()));
        Assert.Contains("sinks.http.hook.url", error.Message);
    }

    [Fact]
    public void An_unset_header_variable_is_an_error_naming_it()
    {
        var error = Assert.Throws<SinkConfigurationException>(() => new HttpSink("hook",
            new HttpSinkConfig { Url = "http://127.0.0.1/", Headers = { ["Authorization"] = "Bearer ${MISSING_TOKEN}" } }, new SinkSecretMasker(), _ => null));
        Assert.Contains("MISSING_TOKEN", error.Message);
        Assert.Contains("sinks.http.hook.headers.Authorization", error.Message);
    }
}

public sealed partial class FileSinkTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("drakkar-files-").FullName;
    private readonly string _base;
    private readonly string _outside;

    public FileSinkTests()
    {
        _base = Path.Combine(_root, "base");
        _outside = Path.Combine(_root, "base-evil");
        Directory.CreateDirectory(Path.Combine(_base, "logs"));
        Directory.CreateDirectory(_outside);
        File.CreateSymbolicLink(Path.Combine(_base, "escape"), _outside);
        File.CreateSymbolicLink(Path.Combine(_base, "secret.jsonl"), Path.Combine(_outside, "stolen.jsonl"));
        File.CreateSymbolicLink(Path.Combine(_base, "inside"), Path.Combine(_base, "logs"));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private (SinkManager Manager, RecordingDlq Dlq) Start(string? basePath = null)
    {
        var dlq = new RecordingDlq();
        var manager = Manager([new FileSink("files", new FileSinkConfig { BasePath = basePath ?? _base })], dlq);
        manager.StartAsync(default).GetAwaiter().GetResult();
        return (manager, dlq);
    }

    private static CollectResult Files(string path, int count, int start = 0)
    {
        var result = new CollectResult();
        for (var i = start; i < start + count; i++) result.Files.Add(FilePayload.Of(path, Reading.Sample(i)));
        return result;
    }

    [Fact]
    public async Task Payloads_are_appended_as_json_lines_and_the_file_is_created()
    {
        var (manager, dlq) = Start();
        await manager.DeliverAsync(Files("logs/out.jsonl", 2), Origin(), default);
        await manager.DeliverAsync(Files("logs/out.jsonl", 1, 2), Origin(), default);

        Assert.Empty(dlq.Letters);
        var lines = await File.ReadAllLinesAsync(Path.Combine(_base, "logs", "out.jsonl"));
        Assert.Equal(Enumerable.Range(0, 3).Select(i => PayloadData.Of(Reading.Sample(i)).ToJson()), lines);
        Assert.EndsWith("\n", await File.ReadAllTextAsync(Path.Combine(_base, "logs", "out.jsonl")));
    }

    [Fact]
    public async Task Text_is_written_as_UTF_8_with_only_the_escapes_JSON_requires()
    {
        var (manager, dlq) = Start();
        var reading = new Reading("r-ü", 1, 0.5, "Привет 'x' \"q\" <b>&+\\\n", ["✓", "🚀"]);
        var result = new CollectResult();
        result.Files.Add(FilePayload.Of("logs/text.jsonl", reading));

        await manager.DeliverAsync(result, Origin(), default);

        Assert.Empty(dlq.Letters);
        var line = await File.ReadAllTextAsync(Path.Combine(_base, "logs", "text.jsonl"), Encoding.UTF8);
        // Python Drakkar (pydantic) writes the same; System.Text.Json's default encoder would write \u0440..., \u0027, \u0022, \u003C.
        Assert.Contains("{\"id\":\"r-ü\",\"count\":1,", line);
        // Except a character outside the Basic Multilingual Plane, which the relaxed encoder escapes as its surrogate
        // pair (docs/generator.md); Python Drakkar writes the emoji as UTF-8.
        Assert.Contains("\"note\":\"Привет 'x' \\\"q\\\" <b>&+\\\\\\n\",\"tags\":[\"✓\",\"\\uD83D\\uDE80\"]", line);
        // The Kafka, HTTP and DLQ writers take the same bytes (PayloadData.ToJsonBytes).
        Assert.Equal(line.TrimEnd('\n'), PayloadData.Of(reading).ToJson());
    }

    [Theory]
    [InlineData("../x.jsonl")]
    [InlineData("logs/../../x.jsonl")]
    [InlineData("{root}/absolute.jsonl")] // absolute, outside base_path
    [InlineData("escape/x.jsonl")]
    [InlineData("secret.jsonl")]
    [InlineData("../base-evil/x.jsonl")]
    [InlineData("inside/../../base-evil/x.jsonl")]
    [InlineData("inside/via-link.jsonl")] // symlinks below base_path are never followed, even ones that stay inside
    [InlineData("logs/../logs/x.jsonl")] // '..' is refused outright
    public async Task Paths_that_escape_base_path_are_refused_as_traversal(string path)
    {
        var (manager, dlq) = Start();
        // Every file under the test's root (base_path's parent), without following links: wherever a path that was not
        // refused would have landed, a new file shows up here.
        string[] Entries() => [.. Directory.GetFileSystemEntries(_root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Order()];
        var before = Entries();

        await manager.DeliverAsync(Files(path.Replace("{root}", _root, StringComparison.Ordinal), 1), Origin(), default);

        var letter = Assert.Single(dlq.Letters);
        Assert.Contains("Path traversal refused", letter.Error);
        Assert.Equal(before, Entries());
    }

    [Fact]
    public async Task A_missing_parent_directory_fails_and_a_missing_base_path_fails_at_connect()
    {
        var (manager, dlq) = Start();
        await manager.DeliverAsync(Files("nope/x.jsonl", 1), Origin(), default);
        Assert.Contains("parent directory", Assert.Single(dlq.Letters).Error);
        Assert.False(Directory.Exists(Path.Combine(_base, "nope")));

        var missing = Manager([new FileSink("files", new FileSinkConfig { BasePath = Path.Combine(_root, "absent") })], new RecordingDlq());
        var error = await Assert.ThrowsAsync<SinkStartupException>(() => missing.StartAsync(default));
        Assert.Contains("base_path", error.Message);
    }

    [Theory]
    [InlineData("nope/x.jsonl", false)]
    [InlineData("nope/x.jsonl", true)]
    [InlineData("secret.jsonl", false)]
    [InlineData("secret.jsonl", true)]
    [InlineData("inside/x.jsonl", false)]
    [InlineData("inside/x.jsonl", true)]
    public async Task A_batch_with_a_refused_path_creates_none_of_its_new_files(string refused, bool componentWalk)
    {
        var sink = await Connected(componentWalk);
        var existing = Path.Combine(_base, "logs", "kept.jsonl");
        await File.WriteAllTextAsync(existing, "{}\n");
        var batch = new SinkBatch("t", 0,
            [FilePayload.Of("fresh.jsonl", Reading.Sample(0)), FilePayload.Of("logs/kept.jsonl", Reading.Sample(1)), FilePayload.Of(refused, Reading.Sample(2))]);

        await Assert.ThrowsAsync<SinkDeliveryException>(() => sink.DeliverAsync(batch, default).AsTask());

        // Opening the new file before the refused path was reached created it empty (the group went to the DLQ).
        Assert.False(File.Exists(Path.Combine(_base, "fresh.jsonl")));
        Assert.Equal("{}\n", await File.ReadAllTextAsync(existing));
        Assert.False(Directory.Exists(Path.Combine(_base, "nope")));
        Assert.Equal(0, OutsideBytes());

        // The same new file in a batch of its own is created and written.
        await sink.DeliverAsync(new SinkBatch("t", 0, [FilePayload.Of("fresh.jsonl", Reading.Sample(0))]), default);
        Assert.Single(await File.ReadAllLinesAsync(Path.Combine(_base, "fresh.jsonl")));
    }

    /// <summary>The worker's default: a sink that cannot be reached holds its payloads (on_outage: pause); retries every 20 ms here.</summary>
    private (SinkManager Manager, RecordingDlq Dlq) StartPausing(DrakkarMetrics? metrics = null)
    {
        var dlq = new RecordingDlq();
        var manager = Manager([new FileSink("files", new FileSinkConfig { BasePath = _base })], dlq, new SinkManagerOptions
        {
            Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause },
            Delay = (_, token) => Task.Delay(20, token),
        }, metrics);
        manager.StartAsync(default).GetAwaiter().GetResult();
        return (manager, dlq);
    }

    [Fact]
    public async Task A_payload_that_cannot_become_json_fails_alone_and_its_neighbours_are_written_once()
    {
        var (manager, dlq) = Start();
        // One hook call: a good line, a NaN (no JSON form), another good line, all to one file, and one to another file.
        var result = Files("logs/mixed.jsonl", 1);
        result.Files.Add(FilePayload.Of("logs/mixed.jsonl", new Gauge("g", double.NaN)));
        result.Files.Add(FilePayload.Of("logs/mixed.jsonl", Reading.Sample(2)));
        result.Files.Add(FilePayload.Of("logs/other.jsonl", Reading.Sample(3)));

        await manager.DeliverAsync(result, Origin(offsets: 1), default).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([PayloadData.Of(Reading.Sample(0)).ToJson(), PayloadData.Of(Reading.Sample(2)).ToJson()],
            await File.ReadAllLinesAsync(Path.Combine(_base, "logs", "mixed.jsonl")));
        Assert.Equal([PayloadData.Of(Reading.Sample(3)).ToJson()], await File.ReadAllLinesAsync(Path.Combine(_base, "logs", "other.jsonl")));
        var letter = Assert.Single(dlq.Letters);
        Assert.Contains("payload 2 of 4 (Gauge) cannot be written as JSON", letter.Error, StringComparison.Ordinal);
        Assert.Contains("Gauge.Value is NaN", letter.Error, StringComparison.Ordinal);
        // The group (one hook call) takes the failure path as a whole and keeps all its payloads for a replay.
        Assert.Equal(4, letter.Payloads.Count);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_payload_naming_a_missing_directory_goes_to_the_DLQ_without_holding_the_sink()
    {
        // One payload whose path names a directory that does not exist is that payload's fault, not an outage: under
        // on_outage: pause it used to hold the sink (and with it consumption) until someone created the directory.
        var (manager, dlq) = StartPausing();
        await manager.DeliverAsync(Files("no-such-dir/x.jsonl", 1), Origin(offsets: 1), default).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        await manager.DeliverAsync(Files("logs/ok.jsonl", 2), Origin(offsets: 2), default).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        var letter = Assert.Single(dlq.Letters);
        Assert.Contains("The parent directory of 'no-such-dir/x.jsonl' does not exist", letter.Error);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(_base, "logs", "ok.jsonl")).Length);
        Assert.Equal(0, manager.InFlightPayloads);
        await manager.CloseAsync();
    }

    [Theory]
    [InlineData(300)]
    [InlineData(5000)]
    public async Task A_payload_naming_a_path_too_long_goes_to_the_DLQ_without_holding_the_sink(int length)
    {
        // A name over 255 bytes (or a path over 4,095) from a message: "File name too long" was taken for an outage, so
        // under on_outage: pause one such message held the sink, and consumption, for good.
        var (manager, dlq) = StartPausing();
        var path = length < 4096 ? "logs/" + new string('n', length) + ".jsonl" : string.Join('/', Enumerable.Repeat(new string('d', 200), length / 201)) + "/x.jsonl";
        await manager.DeliverAsync(Files(path, 1), Origin(offsets: 1), default).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        await manager.DeliverAsync(Files("logs/ok.jsonl", 2), Origin(offsets: 2), default).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        var letter = Assert.Single(dlq.Letters);
        Assert.Contains("is too long: a name may have 255 bytes and a path 4,095; refused", letter.Error);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(_base, "logs", "ok.jsonl")).Length);
        Assert.Equal(CircuitState.Closed, manager.StatsOf("filesystem", "files").Circuit);
        await manager.CloseAsync();
    }

    [Theory]
    [InlineData(OutagePolicy.Pause)]
    [InlineData(OutagePolicy.Dlq)]
    public async Task A_run_of_refused_payloads_longer_than_the_threshold_leaves_the_circuit_closed_and_the_good_ones_flowing(OutagePolicy policy)
    {
        // Ten payloads in a row name a directory that does not exist (twice the default threshold), then three good
        // ones. Refusals used to count as breaker failures: the circuit opened on the fifth, and the good payloads were
        // held as if the sink were down (pause) or dead-lettered as "circuit open" (dlq).
        var metrics = new DrakkarMetrics();
        var dlq = new RecordingDlq();
        var manager = Manager([new FileSink("files", new FileSinkConfig { BasePath = _base })], dlq, new SinkManagerOptions
        {
            Batching = (_, _) => SinkBatching.Default with { OnOutage = policy },
            Delay = (_, token) => Task.Delay(20, token),
        }, metrics);
        await manager.StartAsync(default);
        for (var i = 0; i < 10; i++)
            await manager.DeliverAsync(Files($"missing-{i}/x.jsonl", 1, i), Origin(offsets: i), default).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        for (var i = 10; i < 13; i++)
            await manager.DeliverAsync(Files("logs/good.jsonl", 1, i), Origin(offsets: i), default).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(10, dlq.Letters.Count);
        Assert.All(dlq.Letters, letter => Assert.Contains("does not exist", letter.Error, StringComparison.Ordinal));
        Assert.Equal(Enumerable.Range(10, 3).Select(i => PayloadData.Of(Reading.Sample(i)).ToJson()),
            await File.ReadAllLinesAsync(Path.Combine(_base, "logs", "good.jsonl")));
        Assert.Equal(CircuitState.Closed, manager.StatsOf("filesystem", "files").Circuit);
        Assert.Equal(0, metrics.SinkCircuitTrips.Value("filesystem", "files"));
        Assert.True(manager.IsReady, string.Join("; ", manager.NotReadyReasons));
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_base_path_removed_while_running_is_an_outage_that_ends_when_it_is_back()
    {
        var metrics = new DrakkarMetrics();
        var recorder = new Drakkar.Diagnostics.Recorder.FlightRecorder(new DebugConfig { Enabled = true, DbDir = Path.Combine(_root, "recorder") },
            ("w1", "", "", "{}", ""), null, metrics, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        recorder.Start();
        metrics.Events = recorder;
        var (manager, dlq) = StartPausing(metrics);
        Directory.Delete(_base, recursive: true);
        var delivery = manager.DeliverAsync(Files("x.jsonl", 3), Origin(offsets: 1), default).AsTask();

        // Holding for an outage pauses consumption; the count stays the payloads really held.
        await Eventually.True(() => manager.HoldingForOutage, TimeSpan.FromSeconds(10),
            "the sink holding its payloads while base_path is gone");
        Assert.Equal(3, manager.InFlightPayloads);
        Assert.False(delivery.IsCompleted);
        Directory.CreateDirectory(_base);
        await delivery.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Empty(dlq.Letters);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(_base, "x.jsonl")).Length);
        await manager.CloseAsync();

        // The flight recorder tells an operator when the outage began and how long it lasted.
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();
        using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={database};Mode=ReadOnly");
        db.Open();
        using var query = db.CreateCommand();
        query.CommandText = "SELECT kind, sink, duration_ms FROM events WHERE kind LIKE 'outage%' ORDER BY seq";
        using var rows = query.ExecuteReader();
        Assert.True(rows.Read());
        Assert.Equal(("outage_started", "filesystem/files"), (rows.GetString(0), rows.GetString(1)));
        Assert.True(rows.Read());
        Assert.Equal(("outage_ended", "filesystem/files"), (rows.GetString(0), rows.GetString(1)));
        Assert.True(rows.GetDouble(2) > 0);
        Assert.False(rows.Read());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_base_path_renamed_and_made_again_receives_the_next_lines_not_the_renamed_directory(bool componentWalk)
    {
        var sink = await Connected(componentWalk);
        await sink.DeliverAsync(Lines("out.jsonl"), default);

        // An operator rotates the output directory: the old one moves aside, a new one takes the configured path.
        var rotated = _base + ".1";
        Directory.Move(_base, rotated);
        Directory.CreateDirectory(_base);
        await sink.DeliverAsync(Lines("out.jsonl", 2), default);

        // The sink used to write on into the moved directory through the handle it opened at start.
        Assert.Single(await File.ReadAllLinesAsync(Path.Combine(rotated, "out.jsonl")));
        Assert.Equal(2, (await File.ReadAllLinesAsync(Path.Combine(_base, "out.jsonl"))).Length);

        // Moved away with nothing made in its place: an outage (held under on_outage: pause), not writes into the moved directory.
        Directory.Move(_base, _base + ".2");
        await Assert.ThrowsAsync<DirectoryNotFoundException>(() => sink.DeliverAsync(Lines("out.jsonl"), default).AsTask());
        Assert.Equal(2, (await File.ReadAllLinesAsync(Path.Combine(_base + ".2", "out.jsonl"))).Length);
        await sink.CloseAsync(default);
    }

    [Fact]
    public async Task A_sibling_directory_sharing_the_prefix_is_outside()
    {
        // base_path "/…/base" must not accept "/…/base-evil/…" just because the string starts the same.
        var (manager, dlq) = Start(_base + "/");
        await manager.DeliverAsync(Files("../base-evil/x.jsonl", 1), Origin(), default);
        Assert.Contains("Path traversal refused", Assert.Single(dlq.Letters).Error);
        Assert.Empty(Directory.GetFiles(_outside));
    }

    [Fact]
    public async Task Concurrent_appends_to_one_file_never_interleave_within_a_line()
    {
        var (manager, dlq) = Start();
        var big = new string('x', 20_000);
        await Task.WhenAll(Enumerable.Range(0, 16).Select(t => Task.Run(async () =>
        {
            for (var b = 0; b < 10; b++)
            {
                var result = new CollectResult();
                for (var i = 0; i < 5; i++)
                    result.Files.Add(FilePayload.Of("logs/shared.jsonl", new Reading($"t{t}-b{b}-i{i}", i, 0, big, [])));
                await manager.DeliverAsync(result, Origin(), default);
            }
        })));

        Assert.Empty(dlq.Letters);
        var lines = await File.ReadAllLinesAsync(Path.Combine(_base, "logs", "shared.jsonl"), Encoding.UTF8);
        Assert.Equal(16 * 10 * 5, lines.Length);
        Assert.All(lines, line => Assert.Equal(big, Json(Encoding.UTF8.GetBytes(line)).GetProperty("note").GetString()));
        Assert.Equal(800, lines.Distinct().Count());
    }
}
