using System.Text.Json;
using Drakkar.Cli;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Sinks;
using Drakkar.IntegrationTests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.IntegrationTests.Operations;

/// <summary>
/// The <c>probe</c> command against the embedded broker with a real redis-server and a filesystem sink configured:
/// it prints what each sink would receive and delivers and commits nothing.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed partial class ProbeCommandTests(KafkaBroker kafka) : IDisposable
{
    private readonly RedisServer _redis = new();
    private readonly string _files = Directory.CreateTempSubdirectory("drakkar-probe-").FullName;

    public void Dispose()
    {
        _redis.Dispose();
        Directory.Delete(_files, recursive: true);
    }

    /// <summary>
    /// One real <c>/bin/echo</c> task per message; its output goes to Redis and to a file; "boom" makes Arrange throw,
    /// "bad" returns payloads the sinks refuse, "fail" runs a task that writes to stderr and exits 3.
    /// </summary>
    [Sink(SinkKind.Redis, "cache")]
    [Sink(SinkKind.Filesystem, "files")]
    private sealed partial class EchoHandler : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
        {
            if (messages.Any(m => m.Value.AsSpan().SequenceEqual("boom"u8))) throw new InvalidOperationException("boom in arrange");
            return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => m.Value.AsSpan().SequenceEqual("fail"u8)
                ? new ExecutorTask(TaskId.New("fail")) { BinaryPath = "/bin/sh", Args = ["-c", "echo 'it broke' >&2; exit 3"], SourceOffsets = [m.Offset] }
                : new ExecutorTask(TaskId.New("echo"))
                {
                    BinaryPath = "/bin/echo", Args = [System.Text.Encoding.UTF8.GetString(m.Value)], SourceOffsets = [m.Offset],
                })]);
        }

        public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
        {
            var echoed = result.Stdout.Trim();
            if (echoed == "bad")
            {
                var unkeyed = new Reading(echoed, 0, 0, null, []);
                return ValueTask.FromResult<CollectResult?>(new CollectResult
                {
                    Redis = { RedisPayload.Of("", unkeyed) },
                    Files = { FilePayload.Of("ok.jsonl", unkeyed), FilePayload.Of("../up.jsonl", unkeyed), FilePayload.Of("nodir/out.jsonl", unkeyed) },
                });
            }
            if (echoed == "ring") return ValueTask.FromResult<CollectResult?>(new CollectResult { Files = { FilePayload.Of("out.jsonl", Link.Ring(echoed)) } });
            var reading = new Reading(echoed, echoed.Length, 1.5, null, ["probe"]);
            return ValueTask.FromResult<CollectResult?>(new CollectResult
            {
                Redis = { RedisPayload.Of($"echo:{echoed}", reading, ttl: TimeSpan.FromMinutes(1)) },
                Files = { FilePayload.Of("out.jsonl", reading) },
            });
        }
    }

    private DrakkarConfig Config(string topic, string group)
    {
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group);
        config.Sinks.Redis["cache"] = new RedisSinkConfig { Url = _redis.Url, KeyPrefix = "pfx:" };
        config.Sinks.Filesystem["files"] = new FileSinkConfig { BasePath = _files };
        return config;
    }

    private static Task<(int Exit, JsonElement Report, string Errors)> Probe(DrakkarConfig config, params string[] args) =>
        Probe(new EchoHandler(), config, args);

    private static async Task<(int Exit, JsonElement Report, string Errors)> Probe(DrakkarHandlerBase handler, DrakkarConfig config, params string[] args)
    {
        var line = CommandLine.Parse([ProbeCommand.Name, .. args], new Dictionary<string, (string[], string[])> { [ProbeCommand.Name] = ProbeCommand.Options });
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        var exit = await ProbeCommand.RunAsync(line, handler, config, DrakkarApp.DefaultParts(), NullLoggerFactory.Instance, stdout, stderr, default);
        var report = stdout.Length > 0 ? JsonDocument.Parse(stdout.ToArray()).RootElement.Clone() : default;
        return (exit, report, stderr.ToString());
    }

    [Fact]
    public async Task Probe_prints_each_sinks_payloads_for_an_offset_and_leaves_the_sinks_empty_and_the_group_uncommitted()
    {
        var topic = kafka.CreateTopic("probe-source");
        var group = $"probe-{Guid.NewGuid():N}";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, partitions: 1, count: 3);

        var (exit, report, errors) = await Probe(Config(topic, group), "--partition", "0", "--offset", "1");

        Assert.True(exit == ProbeCommand.ExitOk, errors);
        Assert.Equal(1, Assert.Single(report.GetProperty("messages").EnumerateArray()).GetProperty("offset").GetInt64());
        var sinks = report.GetProperty("sinks").EnumerateArray().ToDictionary(s => $"{s.GetProperty("kind").GetString()}.{s.GetProperty("instance").GetString()}");
        Assert.Equal(["filesystem.files", "redis.cache"], sinks.Keys.Order());
        var redis = Assert.Single(sinks["redis.cache"].GetProperty("payloads").EnumerateArray());
        Assert.Equal("pfx:echo:m-1", redis.GetProperty("key").GetString());
        Assert.Equal(60, redis.GetProperty("ttl_seconds").GetInt64());
        Assert.Equal([1L], redis.GetProperty("offsets").EnumerateArray().Select(o => o.GetInt64()));
        Assert.Equal("on_task_complete #0", redis.GetProperty("hook").GetString());
        Assert.Equal(PayloadData.Of(new Reading("m-1", 3, 1.5, null, ["probe"])).ToJson(), System.Text.Json.Nodes.JsonNode.Parse(redis.GetProperty("data").GetRawText())!.ToJsonString());
        var file = Assert.Single(sinks["filesystem.files"].GetProperty("payloads").EnumerateArray());
        Assert.Equal("out.jsonl", file.GetProperty("path").GetString());

        using var resp = new Resp(_redis.Port);
        Assert.Equal("0", resp.Call("DBSIZE"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_files));
        Assert.Equal([-1L], TestWorker.Committed(kafka.BootstrapServers, topic, group, 1));
    }

    [Fact]
    public async Task Probe_reads_a_messages_file_and_reports_would_be_dead_letters()
    {
        var input = Path.Combine(Path.GetTempPath(), $"drakkar-probe-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(input, """
            [
              { "key": "a", "value": "first", "partition": 2, "offset": 40, "headers": { "trace": "t-1" } },
              { "value": "boom", "partition": 3, "offset": 7 }
            ]
            """);
        try
        {
            var (exit, report, errors) = await Probe(Config("unused", "probe-file"), "--input", input);

            Assert.True(exit == ProbeCommand.ExitOk, errors);
            var redis = report.GetProperty("sinks").EnumerateArray().Single(s => s.GetProperty("kind").GetString() == "redis");
            var payload = Assert.Single(redis.GetProperty("payloads").EnumerateArray());
            Assert.Equal("pfx:echo:first", payload.GetProperty("key").GetString());
            Assert.Equal(2, payload.GetProperty("partition").GetInt32());
            var letter = Assert.Single(report.GetProperty("dead_letters").EnumerateArray());
            Assert.Equal(3, letter.GetProperty("partition").GetInt32());
            Assert.Contains("boom in arrange", letter.GetProperty("error").GetString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(input);
        }
    }

    /// <summary>
    /// The probe's own time limit is every attempt's timeout plus 10 s: each key fits a timer, their product did not, and the
    /// probe died with an unhandled exception (exit 134) after its tasks had started.
    /// </summary>
    [Theory]
    [InlineData(4_294_967, 3)]
    [InlineData(4_300, 1000)]
    public async Task A_task_timeout_times_its_retries_beyond_what_a_timer_holds_still_probes(int timeoutSeconds, int retries)
    {
        var input = Path.Combine(Path.GetTempPath(), $"drakkar-probe-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(input, """[{ "value": "first", "partition": 0, "offset": 1 }]""");
        try
        {
            var config = Config("unused", "probe-long-timeout");
            config.Executor.TaskTimeoutSeconds = timeoutSeconds;
            config.Executor.MaxRetries = retries;

            var (exit, report, errors) = await Probe(config, "--input", input);

            Assert.True(exit == ProbeCommand.ExitOk, errors);
            var redis = report.GetProperty("sinks").EnumerateArray().Single(s => s.GetProperty("kind").GetString() == "redis");
            Assert.Equal("pfx:echo:first", Assert.Single(redis.GetProperty("payloads").EnumerateArray()).GetProperty("key").GetString());
        }
        finally
        {
            File.Delete(input);
        }
    }

    /// <summary>A failed task used to leave its message with no payloads and nothing in the report to say why.</summary>
    [Fact]
    public async Task A_task_that_fails_is_reported_with_each_attempts_exit_code_and_stderr()
    {
        var input = Path.Combine(Path.GetTempPath(), $"drakkar-probe-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(input, """[ { "value": "fine", "offset": 4 }, { "value": "fail", "offset": 5 } ]""");
        try
        {
            var config = Config("unused", "probe-failures");
            config.Executor.MaxRetries = 1;
            var (exit, report, errors) = await Probe(new RetryingEchoHandler(), config, "--input", input);

            Assert.True(exit == ProbeCommand.ExitOk, errors);
            var failures = report.GetProperty("task_failures").EnumerateArray().ToList();
            Assert.Equal([1, 2], failures.Select(f => f.GetProperty("attempt").GetInt32()));
            Assert.All(failures, f =>
            {
                Assert.Equal([5L], f.GetProperty("offsets").EnumerateArray().Select(o => o.GetInt64()));
                Assert.Equal(3, f.GetProperty("exit_code").GetInt32());
                Assert.Contains("exited with code 3", f.GetProperty("error").GetString(), StringComparison.Ordinal);
                Assert.Equal("it broke", f.GetProperty("stderr").GetString()!.Trim());
            });
            var redis = report.GetProperty("sinks").EnumerateArray().Single(s => s.GetProperty("kind").GetString() == "redis");
            Assert.Equal("pfx:echo:fine", Assert.Single(redis.GetProperty("payloads").EnumerateArray()).GetProperty("key").GetString());
        }
        finally
        {
            File.Delete(input);
        }
    }

    /// <summary><see cref="EchoHandler"/>'s tasks, with every failed attempt retried (up to <c>max_retries</c>).</summary>
    [Sink(SinkKind.Redis, "cache")]
    [Sink(SinkKind.Filesystem, "files")]
    private sealed partial class RetryingEchoHandler : DrakkarHandler
    {
        private readonly EchoHandler _echo = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            _echo.Arrange(messages, pending);

        public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result) => _echo.OnTaskComplete(result);

        public override ValueTask<ErrorDecision> OnError(ExecutorTask task, ExecutorError error) => Decide(ErrorDecision.Retry);
    }

    [Fact]
    public async Task A_file_with_a_byte_order_mark_is_read_and_a_payload_with_no_json_form_is_reported_with_its_reason()
    {
        var input = Path.Combine(Path.GetTempPath(), $"drakkar-probe-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(input, """[ { "value": "first" }, { "value": "ring" } ]""");
        try
        {
            // Saved with a byte order mark, as editors on Windows do.
            await File.WriteAllBytesAsync(input, [0xEF, 0xBB, 0xBF, .. await File.ReadAllBytesAsync(input)]);
            var (exit, report, errors) = await Probe(Config("unused", "probe-ring"), "--input", input);

            Assert.True(exit == ProbeCommand.ExitOk, errors);
            var files = report.GetProperty("sinks").EnumerateArray().Single(s => s.GetProperty("kind").GetString() == "filesystem");
            var payloads = files.GetProperty("payloads").EnumerateArray().ToArray();
            Assert.Equal(2, payloads.Length);
            Assert.Equal("first", payloads[0].GetProperty("data").GetProperty("id").GetString());
            Assert.Equal("Link", payloads[1].GetProperty("type").GetString());
            Assert.Equal(JsonValueKind.Null, payloads[1].GetProperty("data").ValueKind);
            Assert.StartsWith("cannot be written as JSON, so the sink would dead-letter it: ", payloads[1].GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Empty(Directory.GetFiles(_files, "*", SearchOption.AllDirectories));
        }
        finally
        {
            File.Delete(input);
        }
    }

    [Fact]
    public async Task Payloads_the_sinks_would_refuse_carry_the_sinks_own_reason()
    {
        var input = Path.Combine(Path.GetTempPath(), $"drakkar-probe-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(input, """[ { "value": "fine" }, { "value": "bad" } ]""");
        try
        {
            var (exit, report, errors) = await Probe(Config("unused", "probe-refused"), "--input", input);

            Assert.True(exit == ProbeCommand.ExitOk, errors);
            var sinks = report.GetProperty("sinks").EnumerateArray().ToDictionary(s => s.GetProperty("kind").GetString()!, s => s.GetProperty("payloads").EnumerateArray().ToArray());
            var (fine, unkeyed) = (sinks["redis"][0], sinks["redis"][1]);
            Assert.False(fine.TryGetProperty("error", out _));
            // The prefix does not make an empty key valid: the real sink checks the key itself.
            Assert.Equal("pfx:", unkeyed.GetProperty("key").GetString());
            Assert.Contains("Reading has an empty Redis key", unkeyed.GetProperty("error").GetString(), StringComparison.Ordinal);
            var files = sinks["filesystem"];
            Assert.Equal(["out.jsonl", "ok.jsonl", "../up.jsonl", "nodir/out.jsonl"], files.Select(f => f.GetProperty("path").GetString()));
            Assert.False(files[0].TryGetProperty("error", out _));
            // A valid path in a hook call with a refused one goes to the DLQ with it: the group is dead-lettered together.
            Assert.StartsWith("the worker would dead-letter it with the rest of its group (this hook call's 3 payloads for filesystem 'files'), " +
                "as payload 2 of them is refused", files[1].GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Contains("Path traversal refused: '../up.jsonl' escapes base_path", files[2].GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Contains("The parent directory of 'nodir/out.jsonl' does not exist", files[3].GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Empty(Directory.EnumerateFileSystemEntries(_files));
        }
        finally
        {
            File.Delete(input);
        }
    }

    [Theory]
    [InlineData("""[ { "value": null }, { "valu": "x" } ]""", "message [1] has no \"value\" (members: valu)")]
    [InlineData("""[ { "value": "x", "offset": -5 } ]""", "message [0]: offset must be a whole number from 0 to 9223372036854775807 (got -5)")]
    [InlineData("""[ { "value": "x", "offset": "abc" } ]""", "message [0]: offset must be a whole number from 0 to 9223372036854775807 (got \"abc\")")]
    [InlineData("""[ { "value": "x", "partition": 99999999999 } ]""", "message [0]: partition must be a whole number from 0 to 2147483647 (got 99999999999)")]
    [InlineData("""[ { "value": "x", "offset": 5 }, { "value": "y", "offset": 3 } ]""", "message [1]: offset 3 must be greater than the offset 5 before it in partition 0")]
    [InlineData("[]", "holds no messages (an empty array)")]
    public async Task A_bad_messages_file_is_a_usage_error_naming_the_entry_and_member(string content, string expected)
    {
        var input = Path.Combine(Path.GetTempPath(), $"drakkar-probe-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(input, content);
        try
        {
            var (exit, _, errors) = await Probe(Config("unused", "probe-file-typo"), "--input", input);

            Assert.Equal(ProbeCommand.ExitUsage, exit);
            Assert.Contains(expected, errors, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(input);
        }
    }

    [Fact]
    public async Task A_directory_or_a_missing_file_given_as_input_is_a_usage_error_saying_so()
    {
        var directory = Directory.CreateTempSubdirectory("drakkar-probe-dir-");
        try
        {
            var (exit, _, errors) = await Probe(Config("unused", "probe-file-dir"), "--input", directory.FullName);

            Assert.Equal(ProbeCommand.ExitUsage, exit);
            Assert.Contains($"error: {directory.FullName}: is a directory, not a JSON file of messages", errors, StringComparison.Ordinal);

            var missing = Path.Combine(directory.FullName, "absent.json");
            (exit, _, errors) = await Probe(Config("unused", "probe-file-missing"), "--input", missing);

            Assert.Equal(ProbeCommand.ExitUsage, exit);
            Assert.Contains($"error: {missing}: no such file", errors, StringComparison.Ordinal);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>A typed handler: the probe shows which messages it could not decode, as a running worker logs them.</summary>
    private sealed class AmountHandler : DrakkarHandler<Pipeline.Amount>
    {
        public List<string?> Seen { get; } = [];

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<Pipeline.Amount>> messages, PendingContext pending)
        {
            lock (Seen) Seen.AddRange(messages.Select(m => m.DecodeError));
            return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
        }
    }

    [Fact]
    public async Task Probe_names_the_messages_it_could_not_decode_and_still_runs_them()
    {
        var input = Path.Combine(Path.GetTempPath(), $"drakkar-probe-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(input, """[ { "value": { "value": 3 }, "offset": 5 }, { "value": "not json", "offset": 6 } ]""");
        try
        {
            var handler = new AmountHandler();
            var (exit, report, errors) = await Probe(handler, Config("unused", "probe-undecodable"), "--input", input);

            Assert.True(exit == ProbeCommand.ExitOk, errors);
            var messages = report.GetProperty("messages").EnumerateArray().ToDictionary(m => m.GetProperty("offset").GetInt64());
            Assert.False(messages[5].TryGetProperty("decode_error", out _));
            Assert.Contains("value is not a valid Amount", messages[6].GetProperty("decode_error").GetString(), StringComparison.Ordinal);
            // Like a running worker, the probe hands an undecodable message on (with a null payload) instead of skipping it.
            Assert.Equal(2, handler.Seen.Count);
        }
        finally
        {
            File.Delete(input);
        }
    }

    [Fact]
    public async Task Probe_tells_a_missing_partition_a_missing_topic_an_offset_past_the_end_and_an_unreachable_broker_apart()
    {
        var topic = kafka.CreateTopic("probe-positions");
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, partitions: 1, count: 2);
        var config = Config(topic, "probe-positions");

        var cases = new (DrakkarConfig Config, string[] Args, string Expected)[]
        {
            (config, ["--partition", "7", "--offset", "0"], $"{topic}[7] does not exist: no topic {topic}, or it has fewer partitions"),
            (config, ["--topic", "no-such-topic", "--partition", "0", "--offset", "0"], "no-such-topic[0] does not exist"),
            (config, ["--partition", "0", "--offset", "5"], $"no message at {topic}[0]@5: the partition ends before it (its next offset is 2)"),
            (TestWorker.Config("127.0.0.1:1", topic, "probe-positions"), ["--partition", "0", "--offset", "0"],
                $"reading {topic}[0]@0 failed: the brokers (127.0.0.1:1) did not answer in 10 s"),
        };
        foreach (var (probeConfig, args, expected) in cases)
        {
            var (exit, _, errors) = await Probe(probeConfig, args);

            Assert.Equal(ProbeCommand.ExitFailure, exit);
            Assert.Contains(expected, errors, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(new[] { "--offset", "1" }, "give --input FILE, or --partition P and --offset O")]
    [InlineData(new[] { "--input", "x.json", "--partition", "0" }, "--input cannot be combined with --topic, --partition or --offset")]
    public async Task Probe_without_a_complete_position_is_a_usage_error(string[] args, string message)
    {
        var (exit, _, errors) = await Probe(Config("unused", "probe-usage"), args);

        Assert.Equal(ProbeCommand.ExitUsage, exit);
        Assert.Contains(message, errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_malformed_position_is_named_as_such_and_not_reported_missing()
    {
        var (exit, _, errors) = await Probe(Config("unused", "probe-usage"), ["--partition", "-1", "--offset", "0"]);

        Assert.Equal(ProbeCommand.ExitUsage, exit);
        Assert.Contains("--partition must be a whole number ≥ 0 (got '-1')", errors, StringComparison.Ordinal);
        Assert.DoesNotContain("give --input FILE", errors, StringComparison.Ordinal);
    }
}
