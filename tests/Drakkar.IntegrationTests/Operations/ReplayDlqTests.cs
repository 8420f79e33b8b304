using System.Text;
using Confluent.Kafka;
using Drakkar.Cli;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Sinks;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Drakkar.Sinks;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.IntegrationTests.Operations;

/// <summary>
/// The DLQ written by the real sink manager (an HTTP sink answering 500, and a source failure), replayed by the
/// <c>replay-dlq</c> command (SPEC S15, S16).
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class ReplayDlqTests(KafkaBroker kafka) : IAsyncLifetime
{
    private const int SinkFailures = 5;
    private readonly KafkaBroker _kafka = kafka;
    private readonly HttpReceiver _receiver = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-replay-").FullName;
    private string _sourceTopic = "";
    private string _dlqTopic = "";
    private string _configPath = "";

    /// <summary>What the DLQ must give back: value JSON, key and headers of every original payload.</summary>
    private readonly List<(string Value, string? Key, (string, string)[] Headers)> _expected = [];

    /// <summary>What <c>--source-messages</c> must give back: the source messages every record names.</summary>
    private readonly List<(string Value, string? Key, (string, string)[] Headers)> _expectedSources = [];

    public async Task InitializeAsync()
    {
        _sourceTopic = _kafka.CreateTopic("replay-source");
        _dlqTopic = _kafka.CreateTopic("replay-dlq", partitions: 2);
        _configPath = Path.Combine(_dir, "drakkar.yaml");
        await File.WriteAllTextAsync(_configPath, $"""
            kafka:
              brokers: {_kafka.BootstrapServers}
              source_topic: {_sourceTopic}
            dlq:
              topic: {_dlqTopic}
            """);

        _receiver.RespondWith(500);
        var config = new DrakkarConfig();
        config.Kafka.Brokers = _kafka.BootstrapServers;
        config.Kafka.SourceTopic = _sourceTopic;
        config.Dlq.Topic = _dlqTopic;
        config.Sinks.Http["webhook"] = new HttpSinkConfig { Url = _receiver.Url + "hook" };
        await using var manager = SinkManager.Create(config, [new SinkDeclaration(SinkKind.Http, "webhook")], new SinkManagerOptions(),
            new DrakkarMetrics(), NullLoggerFactory.Instance);
        await manager.StartAsync(default);
        var sources = new List<SourceMessage>();
        for (var i = 0; i < SinkFailures; i++)
        {
            var reading = Reading.Sample(i);
            var message = Message(offset: i, key: $"key-{i}", value: $"{{\"request\":{i}}}", ("trace-id", $"trace-{i}"), ("tenant", "blue"));
            sources.Add(message);
            _expectedSources.Add(($"{{\"request\":{i}}}", $"key-{i}", [("trace-id", $"trace-{i}"), ("tenant", "blue")]));
            await manager.DeliverAsync(new CollectResult { Http = { HttpPayload.Of(reading) } }, new DeliveryOrigin(_sourceTopic, 0, [message]), default);
            _expected.Add((PayloadData.Of(reading).ToJson(), $"key-{i}", [("trace-id", $"trace-{i}"), ("tenant", "blue")]));
        }
        // A source failure (Arrange threw) dead-letters the messages themselves: each keeps its own key and headers.
        SourceMessage[] failed =
        [
            Message(offset: 10, key: "src-a", value: "{\"request\":\"qa\"}", ("trace-id", "ta")),
            Message(offset: 11, key: "src-b", value: "{\"request\":\"qb\"}", ("trace-id", "tb")),
        ];
        await manager.DeadLetterAsync(new DeliveryOrigin(_sourceTopic, 0, failed), "Arrange threw", default);
        _expected.Add(("{\"request\":\"qa\"}", "src-a", [("trace-id", "ta")]));
        _expected.Add(("{\"request\":\"qb\"}", "src-b", [("trace-id", "tb")]));
        _expectedSources.AddRange(_expected[^2..]);
        // The source topic holds those messages at those offsets (5–9 are others), for --source-messages to read again.
        sources.AddRange(Enumerable.Range(5, 5).Select(o => Message(offset: o, key: $"other-{o}", value: "{}")));
        sources.AddRange(failed);
        using var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig { BootstrapServers = _kafka.BootstrapServers }).Build();
        foreach (var source in sources.OrderBy(m => m.Offset))
        {
            var delivered = await producer.ProduceAsync(new TopicPartition(_sourceTopic, 0), new Message<byte[]?, byte[]>
            {
                Key = source.Key, Value = source.Value, Headers = [.. source.Headers.Select(h => new Header(h.Key, h.Value))],
            });
            Assert.Equal(source.Offset, delivered.Offset.Value);
        }
        Assert.Equal(SinkFailures, manager.StatsOf("http", "webhook").DeadLettered);
    }

    public Task DisposeAsync()
    {
        _receiver.Dispose();
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Every_original_payload_lands_on_the_target_with_its_source_key_and_headers()
    {
        var target = _kafka.CreateTopic("replay-target");

        var run = await Replay("--target-topic", target);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal($"summary: read=6 published={_expected.Count} filtered_out=0 errors=0", run.SummaryLine);
        AssertTargetHolds(target, _expected);
        Assert.Equal(6, HighWatermarkSum(_dlqTopic, 2));
    }

    [Fact]
    public async Task Source_messages_republishes_the_messages_each_record_names_read_again_with_their_keys_and_headers()
    {
        var target = _kafka.CreateTopic("replay-sources-target");

        var run = await Replay("--target-topic", target, "--source-messages");

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal($"summary: read=6 published={_expectedSources.Count} filtered_out=0 errors=0", run.SummaryLine);
        AssertTargetHolds(target, _expectedSources);
    }

    [Fact]
    public async Task Source_messages_no_longer_in_the_topic_are_named_and_exit_1_instead_of_publishing_something_else()
    {
        var dlq = _kafka.CreateTopic("replay-gone-dlq");
        var target = _kafka.CreateTopic("replay-gone-target");
        using (var producer = new ProducerBuilder<string?, string>(new ProducerConfig { BootstrapServers = _kafka.BootstrapServers }).Build())
        {
            await producer.ProduceAsync(dlq, new Message<string?, string>
            {
                Key = null,
                Value = $$"""{"original_payloads":["{}"],"sink_name":"db","sink_type":"postgres","error":"boom","timestamp":1.5,"source_topic":"{{_sourceTopic}}","partition":0,"offsets":[500],"attempt_count":1,"source_messages":[{"offset":500,"key":null,"headers":[]}]}""",
            });
        }

        var run = await Replay("--dlq-topic", dlq, "--target-topic", target, "--source-messages");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"source message {_sourceTopic}[0]@500 is no longer in the topic", run.Stderr, StringComparison.Ordinal);
        Assert.Equal("summary: read=1 published=0 filtered_out=0 errors=1", run.SummaryLine);
        Assert.Equal(0, HighWatermarkSum(target, 1));
    }

    [Fact]
    public async Task A_record_whose_payload_had_no_json_form_is_refused_and_its_source_message_replays_instead()
    {
        var dlq = _kafka.CreateTopic("replay-nan-dlq");
        var target = _kafka.CreateTopic("replay-nan-target");
        // Offset 0 of the source topic: {"request":0} with key-0; its result had a NaN, which JSON cannot carry.
        var source = Message(offset: 0, key: "key-0", value: "{\"request\":0}", ("trace-id", "trace-0"), ("tenant", "blue"));
        var letter = new Drakkar.Sinks.Dlq.DeadLetter("kafka", "results", "cannot be written as JSON", [KafkaPayload.Of(new Reading("r-nan", 1, double.NaN, null, []))],
            1, _sourceTopic, 0, [source], DateTimeOffset.UtcNow);
        ProduceRecords(dlq, letter.ToJsonBytes());

        var run = await Replay("--dlq-topic", dlq, "--target-topic", target);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"{dlq}[0]@0 cannot be replayed and was skipped: a payload of the record had no JSON form", run.Stderr, StringComparison.Ordinal);
        Assert.Equal("summary: read=1 published=0 filtered_out=0 errors=1", run.SummaryLine);
        Assert.Equal(0, HighWatermarkSum(target, 1));

        run = await Replay("--dlq-topic", dlq, "--target-topic", target, "--source-messages");

        Assert.True(run.ExitCode == 0, run.Stderr);
        AssertTargetHolds(target, [("{\"request\":0}", "key-0", [("trace-id", "trace-0"), ("tenant", "blue")])]);
    }

    [Fact]
    public async Task Source_messages_republishes_a_message_once_however_many_records_name_it()
    {
        var dlq = _kafka.CreateTopic("replay-twice-dlq");
        var target = _kafka.CreateTopic("replay-twice-target");
        // Offset 1's results failed in two sinks (a record each); a source failure names offsets 1 and 10.
        var one = Message(offset: 1, key: "key-1", value: "{\"request\":1}", ("trace-id", "trace-1"), ("tenant", "blue"));
        var ten = Message(offset: 10, key: "src-a", value: "{\"request\":\"qa\"}", ("trace-id", "ta"));
        var reading = KafkaPayload.Of(Reading.Sample(1));
        ProduceRecords(dlq,
            new Drakkar.Sinks.Dlq.DeadLetter("kafka", "results", "refused", [reading], 1, _sourceTopic, 0, [one], DateTimeOffset.UtcNow).ToJsonBytes(),
            new Drakkar.Sinks.Dlq.DeadLetter("http", "webhook", "500", [HttpPayload.Of(Reading.Sample(1))], 1, _sourceTopic, 0, [one], DateTimeOffset.UtcNow).ToJsonBytes(),
            new Drakkar.Sinks.Dlq.DeadLetter("source", "arrange", "Arrange threw", [], 0, _sourceTopic, 0, [one, ten], DateTimeOffset.UtcNow).ToJsonBytes());

        var dry = await Replay("--dlq-topic", dlq, "--target-topic", target, "--source-messages", "--dry-run");
        Assert.True(dry.ExitCode == 0, dry.Stderr);
        Assert.Contains("2 source message(s) named by more than one record would be republished once", dry.Stderr, StringComparison.Ordinal);
        Assert.Contains("dry run: 2 messages would be published", dry.Stderr, StringComparison.Ordinal);

        var run = await Replay("--dlq-topic", dlq, "--target-topic", target, "--source-messages");

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal("summary: read=3 published=2 filtered_out=0 errors=0", run.SummaryLine);
        Assert.Contains("2 source message(s) named by more than one record were republished once", run.Stderr, StringComparison.Ordinal);
        AssertTargetHolds(target, [("{\"request\":1}", "key-1", [("trace-id", "trace-1"), ("tenant", "blue")]), ("{\"request\":\"qa\"}", "src-a", [("trace-id", "ta")])]);
        Assert.Equal(2, HighWatermarkSum(target, 1));
    }

    [Fact]
    public async Task Source_messages_named_across_partitions_and_out_of_order_are_each_read_back_as_they_were()
    {
        const int PerPartition = 300;
        var source = _kafka.CreateTopic("replay-many-source", partitions: 2);
        var dlq = _kafka.CreateTopic("replay-many-dlq");
        var target = _kafka.CreateTopic("replay-many-target");
        SourceMessage Stored(int partition, long offset) => new()
        {
            Topic = source, Partition = partition, Offset = offset,
            Key = Encoding.UTF8.GetBytes($"p{partition}-{offset}"), Value = Encoding.UTF8.GetBytes($"{{\"p\":{partition},\"o\":{offset}}}"),
            Headers = [new KeyValuePair<string, byte[]>("seen", Encoding.UTF8.GetBytes($"{partition}/{offset}"))],
        };
        using (var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig { BootstrapServers = _kafka.BootstrapServers, LingerMs = 5 }).Build())
        {
            for (var partition = 0; partition < 2; partition++)
                for (var offset = 0; offset < PerPartition; offset++)
                {
                    var m = Stored(partition, offset);
                    producer.Produce(new TopicPartition(source, partition), new Message<byte[]?, byte[]>
                    {
                        Key = m.Key, Value = m.Value, Headers = [.. m.Headers.Select(h => new Header(h.Key, h.Value))],
                    });
                }
            producer.Flush(TimeSpan.FromSeconds(30));
        }
        // The records alternate between the partitions: partition 0 forwards, partition 1 backwards, and every tenth
        // record of partition 0 names its message and the one 150 further on (a window of two).
        var letters = new List<byte[]>();
        for (var i = 0; i < PerPartition; i++)
        {
            SourceMessage[] forward = i % 10 == 0 && i + 150 < PerPartition ? [Stored(0, i), Stored(0, i + 150)] : [Stored(0, i)];
            letters.Add(new Drakkar.Sinks.Dlq.DeadLetter("source", "arrange", "Arrange threw", [], 0, source, 0, forward, DateTimeOffset.UtcNow).ToJsonBytes());
            letters.Add(new Drakkar.Sinks.Dlq.DeadLetter("source", "arrange", "Arrange threw", [], 0, source, 1, [Stored(1, PerPartition - 1 - i)], DateTimeOffset.UtcNow).ToJsonBytes());
        }
        ProduceRecords(dlq, [.. letters]);

        var run = await Replay("--dlq-topic", dlq, "--target-topic", target, "--source-messages");

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal($"summary: read={2 * PerPartition} published={2 * PerPartition} filtered_out=0 errors=0", run.SummaryLine);
        AssertTargetHolds(target, [.. Enumerable.Range(0, 2).SelectMany(p => Enumerable.Range(0, PerPartition)
            .Select(o => ($"{{\"p\":{p},\"o\":{o}}}", (string?)$"p{p}-{o}", new[] { ("seen", $"{p}/{o}") })))]);
    }

    private void ProduceRecords(string topic, params byte[][] values)
    {
        using var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig { BootstrapServers = _kafka.BootstrapServers }).Build();
        foreach (var value in values) producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]> { Value = value }).GetAwaiter().GetResult();
    }

    [Fact]
    public async Task Filter_replays_only_matching_records_and_counts_the_rest()
    {
        var target = _kafka.CreateTopic("replay-filtered");

        var run = await Replay("--target-topic", target, "--filter", "\"id\":\"r-3\"");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("summary: read=6 published=1 filtered_out=5 errors=0", run.SummaryLine);
        var record = Assert.Single(SinkTestKit.Consume(_kafka.BootstrapServers, target, 1));
        Assert.Equal(PayloadData.Of(Reading.Sample(3)).ToJson(), Encoding.UTF8.GetString(record.Message.Value));
        Assert.Equal(1, HighWatermarkSum(target, 1));
    }

    [Fact]
    public async Task Limit_stops_after_reading_that_many_records()
    {
        var target = _kafka.CreateTopic("replay-limited");

        var run = await Replay("--target-topic", target, "--limit", "2");

        Assert.Equal(0, run.ExitCode);
        Assert.Matches(@"^summary: read=2 published=[23] filtered_out=0 errors=0$", run.SummaryLine);
        var published = int.Parse(run.SummaryLine.Split(' ')[2]["published=".Length..]);
        Assert.Equal(published, HighWatermarkSum(target, 1));
    }

    [Fact]
    public async Task Batches_of_limit_resumed_with_the_printed_from_replay_everything_once()
    {
        var target = _kafka.CreateTopic("replay-batches");
        var batches = 0;
        string[] from = [];
        while (true)
        {
            var run = await Replay(["--target-topic", target, "--limit", "2", .. from]);
            Assert.True(run.ExitCode == 0, run.Stderr);
            batches++;
            var resume = System.Text.RegularExpressions.Regex.Match(run.Stderr, @"to resume: --from (\S+)");
            if (!resume.Success) break;
            Assert.True(batches < 6, $"still resuming after {batches} batches of 2 of 6 records: {run.Stderr}");
            from = ["--from", resume.Groups[1].Value];
        }

        Assert.Equal(3, batches);
        AssertTargetHolds(target, _expected);
        Assert.Equal(_expected.Count, HighWatermarkSum(target, 1));
    }

    [Fact]
    public async Task Dry_run_counts_without_publishing()
    {
        var target = _kafka.CreateTopic("replay-dry");

        var run = await Replay("--target-topic", target, "--dry-run");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("summary: read=6 published=0 filtered_out=0 errors=0", run.SummaryLine);
        Assert.Contains($"dry run: {_expected.Count} messages would be published to {target}", run.Stderr);
        Assert.Equal(0, HighWatermarkSum(target, 1));
    }

    [Fact]
    public async Task An_interrupted_replay_finishes_its_in_flight_produces_and_prints_the_summary_and_where_to_resume()
    {
        const int count = 2500;
        var dlq = _kafka.CreateTopic("replay-interrupted-dlq");
        var target = _kafka.CreateTopic("replay-interrupted");
        ProducePythonRecords(dlq, count);
        // Ctrl+C arrives as the 1000th record is read: produces are in flight and unacknowledged at that moment, for
        // the broker answers every request 300 ms late. Without the delay, every acknowledgement was already in before
        // the summary was printed even with nothing waiting for them, so a replay that dropped its in-flight produces passed.
        using var interrupt = new CancellationTokenSource();
        using var stderr = new InterruptingWriter($"replay-dlq: read 1000/{count}", interrupt);

        _kafka.Broker.SetRoundTripTime(TimeSpan.FromMilliseconds(300));
        Run run;
        try
        {
            run = await Replay(interrupt.Token, stderr, "--target-topic", target, "--dlq-topic", dlq);
        }
        finally
        {
            _kafka.Broker.SetRoundTripTime(TimeSpan.Zero);
        }

        Assert.Equal(130, run.ExitCode);
        // Everything read was published: the in-flight produces were awaited and flushed, not dropped.
        Assert.Equal("summary: read=1000 published=1000 filtered_out=0 errors=0", run.SummaryLine);
        Assert.Contains("interrupted: in-flight produces finished and flushed", run.Stderr);
        Assert.Contains($"last DLQ offset settled: {dlq}[0] = 999 (it and every record before it replayed", run.Stderr);
        Assert.Contains("to resume: --from 0:1000", run.Stderr);
        Assert.Equal(1000, HighWatermarkSum(target, 1));
        var keys = SinkTestKit.Consume(_kafka.BootstrapServers, target, 1000).Select(r => Encoding.UTF8.GetString(r.Message.Key!)).ToHashSet();
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => $"py-{i}").ToHashSet(), keys);

        // Resumed where it said: the rest once, nothing twice.
        var resumed = await Replay("--target-topic", target, "--dlq-topic", dlq, "--from", "0:1000");

        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Equal($"summary: read={count - 1000} published={count - 1000} filtered_out=0 errors=0", resumed.SummaryLine);
        Assert.Contains($"replay-dlq: {count - 1000} records in {dlq} (1 non-empty partitions; starting at [0]@1000)", resumed.Stderr);
        var all = SinkTestKit.Consume(_kafka.BootstrapServers, target, count).Select(r => Encoding.UTF8.GetString(r.Message.Key!)).ToList();
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"py-{i}").Order(StringComparer.Ordinal), all.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Since_replays_only_records_written_at_or_after_that_time_and_says_how_many_it_passed_over()
    {
        var dlq = _kafka.CreateTopic("replay-since-dlq", partitions: 2);
        var target = _kafka.CreateTopic("replay-since-target");
        var incident = new DateTime(2025, 3, 1, 7, 0, 0, DateTimeKind.Utc);
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = _kafka.BootstrapServers }).Build())
        {
            // Per partition: two records from the day before, then three from the incident on (one at its very start).
            for (var i = 0; i < 10; i++)
            {
                var at = i % 5 < 2 ? incident.AddDays(-1).AddMinutes(i) : incident.AddMinutes(i % 5 - 2);
                await producer.ProduceAsync(new TopicPartition(dlq, i / 5), new Message<string, string>
                {
                    Key = $"r-{i}",
                    Value = $$"""{"original_payloads":["{\"n\":{{i}}}"],"sink_name":"out","sink_type":"kafka","error":"boom","timestamp":1.5,"partition":0,"attempt_count":1}""",
                    Timestamp = new Timestamp(at),
                });
            }
        }

        var run = await Replay("--target-topic", target, "--dlq-topic", dlq, "--since", "2025-03-01T07:00:00Z");

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal("summary: read=6 published=6 filtered_out=0 errors=0", run.SummaryLine);
        Assert.Contains("4 record(s) written before --since 2025-03-01T07:00:00Z were passed over", run.Stderr);
        var keys = SinkTestKit.Consume(_kafka.BootstrapServers, target, 6).Select(r => Encoding.UTF8.GetString(r.Message.Key!)).Order(StringComparer.Ordinal);
        Assert.Equal(["r-2", "r-3", "r-4", "r-7", "r-8", "r-9"], keys);

        // A duration back from now: everything above is older than an hour.
        run = await Replay("--target-topic", target, "--dlq-topic", dlq, "--since", "1h", "--dry-run");
        Assert.Equal("summary: read=0 published=0 filtered_out=0 errors=0", run.SummaryLine);
    }

    [Fact]
    public async Task From_a_partition_the_dlq_does_not_have_is_a_usage_error_naming_its_partitions()
    {
        var run = await Replay("--target-topic", "t", "--from", "0:1,7:3");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains($"--from names partition 7, which {_dlqTopic} does not have (its partitions are 0, 1)", run.Stderr);
    }

    /// <summary>Cancels <paramref name="interrupt"/> when a line containing <paramref name="trigger"/> is written, as Ctrl+C would.</summary>
    private sealed class InterruptingWriter(string trigger, CancellationTokenSource interrupt) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value?.Contains(trigger, StringComparison.Ordinal) == true) interrupt.Cancel();
        }
    }

    [Fact]
    public async Task A_long_replay_reports_progress_every_1000_records_and_reads_python_drakkar_records()
    {
        const int count = 2500;
        var dlq = _kafka.CreateTopic("replay-python-dlq");
        var target = _kafka.CreateTopic("replay-python-target");
        ProducePythonRecords(dlq, count);

        var run = await Replay("--target-topic", target, "--dlq-topic", dlq);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal($"summary: read={count} published={count} filtered_out=0 errors=0", run.SummaryLine);
        Assert.Contains($"replay-dlq: read 1000/{count}", run.Stderr);
        Assert.Contains($"replay-dlq: read 2000/{count}", run.Stderr);
        var last = SinkTestKit.Consume(_kafka.BootstrapServers, target, count).Single(r => Encoding.UTF8.GetString(r.Message.Key!) == "py-2499");
        Assert.Equal("{\"n\":2499}", Encoding.UTF8.GetString(last.Message.Value));
        Assert.Equal("python", Encoding.UTF8.GetString(last.Message.Headers.GetLastBytes("origin")));
    }

    [Fact]
    public async Task A_publish_failure_exits_1_and_names_the_last_successful_dlq_offset()
    {
        const short produceApi = 0;
        var target = _kafka.CreateTopic("replay-refused");
        // Non-retriable, so the first produce request fails at once instead of being retried until the timeout.
        _kafka.Broker.PushRequestErrors(produceApi, [.. Enumerable.Repeat(ErrorCode.TopicAuthorizationFailed, 50)]);
        Run run;
        try
        {
            run = await Replay("--target-topic", target);
        }
        finally
        {
            _kafka.Broker.ClearRequestErrors(produceApi);
        }

        Assert.Equal(1, run.ExitCode);
        Assert.Matches(@"^summary: read=[1-6] published=0 filtered_out=0 errors=[1-6]$", run.SummaryLine);
        Assert.Matches($@"error: publishing {_dlqTopic}\[[01]\]@\d+ to {target} failed: ", run.Stderr);
        Assert.Matches($@"last DLQ offset settled: {_dlqTopic}\[[01]\] = (none|\d+)", run.Stderr);
    }

    [Fact]
    public async Task Dlq_topic_override_reads_another_topic()
    {
        var empty = _kafka.CreateTopic("replay-empty-dlq");
        var target = _kafka.CreateTopic("replay-from-empty");

        var run = await Replay("--target-topic", target, "--dlq-topic", empty);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("summary: read=0 published=0 filtered_out=0 errors=0", run.SummaryLine);
    }

    [Theory]
    [InlineData(new string[0], "--target-topic is required")]
    [InlineData(new[] { "--target-topic", "t", "--bogus" }, "unknown option '--bogus'")]
    [InlineData(new[] { "--target-topic", "t", "--limit", "many" }, "--limit must be a whole number")]
    [InlineData(new[] { "--target-topic", "t", "--limit", "0" }, "--limit must be a whole number ≥ 1 (got '0')")]
    [InlineData(new[] { "--target-topic", "t", "--from", "0=12" }, "--from takes PARTITION:OFFSET pairs separated by commas")]
    [InlineData(new[] { "--target-topic", "t", "--from", "0:1,0:5" }, "--from names partition 0 twice")]
    [InlineData(new[] { "--target-topic", "t", "--since", "yesterday" }, "--since takes a time (2026-12-06T07:00:00Z; UTC unless an offset is given) or a duration back from now")]
    public async Task Usage_errors_exit_2_and_say_what_is_wrong(string[] args, string message)
    {
        var run = await Replay(args);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(message, run.Stderr);
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public async Task An_embedded_broker_in_the_configuration_is_a_usage_error_that_says_how_to_name_the_running_one()
    {
        var config = Path.Combine(_dir, "embedded.yaml");
        await File.WriteAllTextAsync(config, "kafka: { brokers: embedded, source_topic: orders }\n");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var exit = await ReplayDlqCommand.RunAsync(["--config", config, "--dry-run"], stdout, stderr, CancellationToken.None);

        Assert.Equal(2, exit);
        Assert.Contains("the DLQ brokers are 'embedded'", stderr.ToString(), StringComparison.Ordinal);
        Assert.Contains("DK_KAFKA__BROKERS=HOST:PORT", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dry_run_reads_the_dlq_brokers_named_alone_while_kafka_brokers_stays_embedded()
    {
        var dlq = _kafka.CreateTopic("replay-dlq-alone");
        ProducePythonRecords(dlq, 2);
        var config = Path.Combine(_dir, "embedded-dlq-alone.yaml");
        await File.WriteAllTextAsync(config, $"kafka: {{ brokers: embedded, source_topic: orders }}\ndlq: {{ brokers: \"{_kafka.BootstrapServers}\", topic: {dlq} }}\n");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        // Nothing is published, so no target brokers are needed.
        var exit = await ReplayDlqCommand.RunAsync(["--config", config, "--dry-run"], stdout, stderr, CancellationToken.None);

        Assert.True(exit == 0, stderr.ToString());
        Assert.Contains("summary: read=2 published=0 filtered_out=0 errors=0", stderr.ToString() + stdout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_dlq_topic_is_a_configuration_error()
    {
        var run = await Replay("--target-topic", "t", "--dlq-topic", "no-such-dlq-topic");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("cannot read the DLQ topic 'no-such-dlq-topic'", run.Stderr);
    }

    [Fact]
    public void The_sample_binary_documents_replay_dlq()
    {
        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["replay-dlq", "--help"], _dir);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)), "replay-dlq --help did not exit");
        Assert.Equal(0, sample.ExitCode);
        Assert.Contains("replay-dlq --target-topic TOPIC", sample.Stdout);
        Assert.Contains("summary: read=N published=N filtered_out=N errors=N", sample.Stdout);
    }

    /// <summary>
    /// Writes <paramref name="count"/> records as Python Drakkar does: no <c>source_messages</c>; the source key
    /// (<c>py-{i}</c>) and headers are on the record itself.
    /// </summary>
    private void ProducePythonRecords(string dlq, int count)
    {
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = _kafka.BootstrapServers, LingerMs = 5 }).Build();
        for (var i = 0; i < count; i++)
        {
            producer.Produce(dlq, new Message<string, string>
            {
                Key = $"py-{i}",
                Value = $$"""{"original_payloads":["{\"n\":{{i}}}"],"sink_name":"out","sink_type":"kafka","error":"boom","timestamp":1.5,"partition":0,"attempt_count":1}""",
                Headers = [new Header("origin", Encoding.UTF8.GetBytes("python"))],
            });
        }
        producer.Flush(TimeSpan.FromSeconds(30));
    }

    /// <summary>The target topic holds exactly <paramref name="expected"/>: values, keys and headers, in any order.</summary>
    private void AssertTargetHolds(string target, List<(string Value, string? Key, (string, string)[] Headers)> expected)
    {
        var replayed = SinkTestKit.Consume(_kafka.BootstrapServers, target, expected.Count)
            .Select(r => (Value: Encoding.UTF8.GetString(r.Message.Value), Key: r.Message.Key is null ? null : Encoding.UTF8.GetString(r.Message.Key),
                Headers: r.Message.Headers.Select(h => (h.Key, Encoding.UTF8.GetString(h.GetValueBytes()))).ToArray()))
            .OrderBy(r => r.Key, StringComparer.Ordinal).ToList();
        var ordered = expected.OrderBy(e => e.Key, StringComparer.Ordinal).ToList();
        Assert.Equal(ordered.Count, replayed.Count);
        for (var i = 0; i < ordered.Count; i++)
        {
            Assert.Equal(ordered[i].Value, replayed[i].Value);
            Assert.Equal(ordered[i].Key, replayed[i].Key);
            Assert.Equal(ordered[i].Headers, replayed[i].Headers);
        }
    }

    private sealed record Run(int ExitCode, string Stdout, string Stderr)
    {
        public string SummaryLine => Stdout.TrimEnd('\n').Split('\n')[^1];
    }

    private Task<Run> Replay(params string[] args) => Replay(CancellationToken.None, new StringWriter(), args);

    private async Task<Run> Replay(CancellationToken cancellationToken, StringWriter stderr, params string[] args)
    {
        using var stdout = new StringWriter();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var exit = await ReplayDlqCommand.RunAsync(["--config", _configPath, .. args], stdout, stderr, timeout.Token);
        return new Run(exit, stdout.ToString(), stderr.ToString());
    }

    private long HighWatermarkSum(string topic, int partitions)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = _kafka.BootstrapServers, GroupId = "watermarks" }).Build();
        return Enumerable.Range(0, partitions)
            .Sum(p => consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10)).High.Value);
    }

    private SourceMessage Message(long offset, string key, string value, params (string Key, string Value)[] headers) => new()
    {
        Topic = _sourceTopic,
        Partition = 0,
        Offset = offset,
        Key = Encoding.UTF8.GetBytes(key),
        Value = Encoding.UTF8.GetBytes(value),
        Headers = [.. headers.Select(h => new KeyValuePair<string, byte[]>(h.Key, Encoding.UTF8.GetBytes(h.Value)))],
    };
}
