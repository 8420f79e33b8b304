using System.Diagnostics;
using System.Text;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Sinks;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Operations;

/// <summary>
/// Spans of a real worker exported over OTLP/HTTP to an in-test collector, and W3C <c>traceparent</c> carried from the
/// source record to the Kafka sink's records (SPEC X6).
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class TracingTests(KafkaBroker kafka)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task One_message_is_traced_from_its_traceparent_through_its_task_to_its_deliveries_and_the_sink_records_carry_the_trace()
    {
        using var collector = new OtlpReceiver();
        var (source, results) = Topics("trace");
        var config = TracedConfig(source, "trace-group", collector, c => c.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = results });
        var worker = await TestWorker.StartAsync(new TracedHandler(), config, workerId: "traced-worker");
        var upstreamTrace = ActivityTraceId.CreateRandom();
        var upstreamSpan = ActivitySpanId.CreateRandom();
        await ProduceAsync(source, $"00-{upstreamTrace.ToHexString()}-{upstreamSpan.ToHexString()}-01");
        await ProduceAsync(source, traceParent: null);
        var sampledOutTrace = ActivityTraceId.CreateRandom();
        await ProduceAsync(source, $"00-{sampledOutTrace.ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-00");

        var records = SinkTestKit.Consume(kafka.BootstrapServers, results, 6, Deadline);
        await worker.StopAsync(); // exports the spans still buffered

        var traced = TraceParentsByKey(records);
        var spans = collector.Spans.Where(s => s.TraceId == upstreamTrace.ToHexString()).ToList();
        var message = Assert.Single(spans, s => s.Name == "message");
        Assert.Equal(upstreamSpan.ToHexString(), message.ParentSpanId);
        Assert.Equal(5, message.Kind); // consumer
        Assert.Equal((source, "0"), (message.Attributes["messaging.destination.name"], message.Attributes["messaging.kafka.offset"]));
        var task = Assert.Single(spans, s => s.Name == "task");
        Assert.Equal(message.SpanId, task.ParentSpanId);
        Assert.Equal("1", task.Attributes["drakkar.task.attempts"]);
        var deliveries = spans.Where(s => s.Name == "delivery").ToList();
        Assert.Equal(2, deliveries.Count);
        var fromTask = Assert.Single(deliveries, d => d.ParentSpanId == task.SpanId);
        var fromMessage = Assert.Single(deliveries, d => d.ParentSpanId == message.SpanId);
        Assert.All(deliveries, d => Assert.Equal(("kafka", "results"), (d.Attributes["drakkar.sink.kind"], d.Attributes["drakkar.sink.name"])));
        Assert.All(spans, s => Assert.Equal("traced-worker", s.ServiceName));

        // Each sink record names, in the upstream trace, the delivery span that produced it.
        Assert.Equal($"00-{upstreamTrace.ToHexString()}-{fromTask.SpanId}-01", traced["task-0"]);
        Assert.Equal($"00-{upstreamTrace.ToHexString()}-{fromMessage.SpanId}-01", traced["message-0"]);

        // A record without traceparent starts a trace of its own, with the same chain.
        var rootTrace = traced["task-1"].Split('-')[1];
        Assert.NotEqual(upstreamTrace.ToHexString(), rootTrace);
        var root = collector.Spans.Where(s => s.TraceId == rootTrace).ToList();
        var rootMessage = Assert.Single(root, s => s.Name == "message");
        Assert.Equal("", rootMessage.ParentSpanId);
        Assert.Equal(rootMessage.SpanId, Assert.Single(root, s => s.Name == "task").ParentSpanId);
        Assert.Equal(2, root.Count(s => s.Name == "delivery"));

        // A record sampled out upstream is not exported, but its trace still reaches the sink records, not sampled.
        Assert.DoesNotContain(collector.Spans, s => s.TraceId == sampledOutTrace.ToHexString());
        Assert.All(new[] { traced["task-2"], traced["message-2"] }, t =>
            Assert.Matches($"^00-{sampledOutTrace.ToHexString()}-[0-9a-f]{{16}}-00$", t));
        Assert.All(collector.Requests, r => Assert.Equal("POST /v1/traces application/x-protobuf", r));
    }

    [Fact]
    public async Task A_task_whose_process_exits_non_zero_has_its_exit_code_on_its_span()
    {
        using var collector = new OtlpReceiver();
        var (source, _) = Topics("trace-exit");
        var config = TracedConfig(source, "trace-exit-group", collector, c =>
        {
            c.Executor.BinaryPath = "/bin/sh";
            c.Executor.MaxRetries = 0;
        });
        var worker = await TestWorker.StartAsync(new ExitingHandler(), config);
        await ProduceAsync(source, traceParent: null);
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, source, "trace-exit-group", 1)[0] == 1, Deadline, "the message committed");
        await worker.StopAsync(); // exports the spans still buffered

        // Only this test's task: while its tracer runs, it also exports the spans of workers other test classes run at the same time.
        var task = Assert.Single(collector.Spans, IsExitTask);
        Assert.Equal("3", task.Attributes["process.exit.code"]);
    }

    [Fact]
    public async Task A_collector_that_refuses_spans_is_said_once_as_a_warning_and_its_return_too()
    {
        using var collector = new OtlpReceiver();
        collector.RespondWith(503);
        var (source, _) = Topics("trace-down");
        var config = TracedConfig(source, "trace-down-group", collector, c =>
        {
            c.Executor.BinaryPath = "/bin/sh";
            c.Executor.MaxRetries = 0;
        });
        var logs = new LogCapture();
        await using var worker = await TestWorker.StartAsync(new ExitingHandler(), config, loggers: logs);
        await ProduceAsync(source, traceParent: null);
        await Eventually.True(() => logs.Containing("Spans cannot be exported to").Length > 0, Deadline, () => $"requests: {string.Join(", ", collector.Requests)}; {logs.Text()}");

        collector.RespondWith(200);
        await ProduceAsync(source, traceParent: null);
        await Eventually.True(() => logs.Containing("Spans reach").Length > 0, Deadline, logs.Text);
        await worker.StopAsync();

        // Without this, the exporter dropped its batches without a word: a collector that is down looked like tracing off.
        var warning = Assert.Single(logs.Containing("Spans cannot be exported to"));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, warning.Level);
        Assert.Contains($"{collector.Endpoint}/v1/traces (telemetry.otlp_endpoint): HTTP 503", warning.Message, StringComparison.Ordinal);
        Assert.Contains(collector.Spans, IsExitTask);
    }

    /// <summary>A span of <see cref="ExitingHandler"/>'s tasks.</summary>
    private static bool IsExitTask(OtlpSpan span) =>
        span.Name == "task" && span.Attributes.TryGetValue("drakkar.task.id", out var id) && id.StartsWith("exit-", StringComparison.Ordinal);

    /// <summary>One task per message whose process exits 3.</summary>
    private sealed class ExitingHandler : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("exit"))
            {
                Args = ["-c", "exit 3"],
                SourceOffsets = [m.Offset],
            })]);
    }

    [Fact]
    public async Task Without_telemetry_traces_sink_records_carry_no_traceparent()
    {
        var (source, results) = Topics("untraced");
        var config = TestWorker.Config(kafka.BootstrapServers, source, "untraced-group",
            c => c.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = results });
        await using var worker = await TestWorker.StartAsync(new TracedHandler(), config);
        await ProduceAsync(source, $"00-{ActivityTraceId.CreateRandom().ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01");

        var records = SinkTestKit.Consume(kafka.BootstrapServers, results, 2, Deadline);

        Assert.All(records, r => Assert.Null(r.Message.Headers?.FirstOrDefault(h => h.Key == "traceparent")));
    }

    /// <summary>A worker configuration that exports its spans to <paramref name="collector"/>.</summary>
    private DrakkarConfig TracedConfig(string source, string group, OtlpReceiver collector, Action<DrakkarConfig> adjust) =>
        TestWorker.Config(kafka.BootstrapServers, source, group, c =>
        {
            c.Telemetry.Traces = true;
            c.Telemetry.OtlpEndpoint = collector.Endpoint;
            adjust(c);
        });

    private (string Source, string Results) Topics(string prefix)
    {
        var source = kafka.CreateTopic($"{prefix}-source");
        kafka.Broker.CreateTopic(source + "_dlq", 1);
        return (source, kafka.CreateTopic($"{prefix}-results"));
    }

    private async Task ProduceAsync(string topic, string? traceParent)
    {
        using var producer = new ProducerBuilder<string?, string>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).Build();
        var headers = new Headers();
        if (traceParent is not null) headers.Add("traceparent", Encoding.ASCII.GetBytes(traceParent));
        await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<string?, string> { Value = "search", Headers = headers });
    }

    private static Dictionary<string, string> TraceParentsByKey(IEnumerable<ConsumeResult<byte[]?, byte[]>> records) =>
        records.ToDictionary(r => Encoding.UTF8.GetString(r.Message.Key!), r => Encoding.ASCII.GetString(r.Message.Headers.GetLastBytes("traceparent")));

    /// <summary>One precomputed task per message; the task's and the message's hooks each send a record to the Kafka sink.</summary>
    private sealed class TracedHandler : DrakkarHandler
    {
        protected internal override IReadOnlyList<SinkDeclaration> DeclaredSinks => [new SinkDeclaration(SinkKind.Kafka, "results")];

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("trace"))
            {
                Precomputed = new PrecomputedResult("1\n"),
                SourceOffsets = [m.Offset],
                Metadata = { ["offset"] = m.Offset.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            })]);

        public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result) =>
            ValueTask.FromResult<CollectResult?>(Record($"task-{result.Task.Metadata["offset"]}"));

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group) =>
            ValueTask.FromResult<CollectResult?>(Record($"message-{group.Message.Offset}"));

        private static CollectResult Record(string key) =>
            new() { Kafka = { KafkaPayload.Of(Reading.Sample(1), Encoding.UTF8.GetBytes(key)) } };
    }
}
