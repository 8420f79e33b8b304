using System.Globalization;
using System.Net.Http;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Operations;
using Drakkar.IntegrationTests.Support;
using Drakkar.Kafka.Embedded;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>An input: a fraction to divide.</summary>
[Payload]
public sealed partial record Fraction(string Id, double Numerator, double Denominator);

/// <summary>What the worker writes: the quotient, which is NaN for 0/0 and Infinity for 1/0 (no JSON form).</summary>
[Payload]
public sealed partial record Quotient(string Id, double Value);

/// <summary>
/// Poison among good input, through a whole worker: undecodable values (invalid JSON, a null value, a NaN literal)
/// are counted and logged and complete with nothing to deliver; a 4 MB value and invalid UTF-8 in keys and headers
/// go through like any other message; results whose data has no JSON form (NaN, Infinity) become DLQ records of their
/// own, keeping the source key and headers byte for byte. Every good message is delivered. Then the same poison with
/// the DLQ's broker down: the offsets wait at the poison, and the records are written once the broker is back.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class PoisonInputTests(KafkaBroker kafka) : IDisposable
{
    private const string ResultsFile = "quotients.jsonl";
    private const int Good = 20;
    private static readonly byte[] InvalidUtf8 = [0xff, 0xfe, 0x28, 0xc3];
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-poison-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class DividingHandler : DrakkarHandler<Fraction>
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<Fraction>> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Where(m => m.Payload is not null).Select(m => new ExecutorTask(TaskId.New("divide"))
            {
                Precomputed = new PrecomputedResult("ok"),
                SourceOffsets = [m.Offset],
            })]);

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup<Fraction> group) =>
            ValueTask.FromResult(group.Message is { Payload: { } f }
                ? new CollectResult { Files = { FilePayload.Of(ResultsFile, new Quotient(f.Id, f.Numerator / f.Denominator)) } }
                : null);
    }

    private sealed record Input(string Label, byte[]? Key, byte[]? Value, Headers? Headers = null);

    // The embedded broker keeps about the last 5 MB of each partition and trims a larger record away as it arrives
    // (Kafka's own default limit, message.max.bytes, is 1 MB), so the big value is 4 MB and has a partition to itself.
    private const string BigValue = "4 MB value";

    /// <summary>Good fractions g-0…g-19 with the poison spread between them; all on partition 0 but the big value (partition 1).</summary>
    private static List<Input> Inputs()
    {
        static byte[] Json(string text) => Encoding.UTF8.GetBytes(text);
        static byte[] Fraction(string id, string numerator, string denominator) =>
            Json($$"""{"id":"{{id}}","numerator":{{numerator}},"denominator":{{denominator}}}""");
        var bigValue = Json($$"""{"id":"big","numerator":10,"denominator":4,"padding":"{{new string('x', 4 << 20)}}"}""");
        var poison = new List<Input>
        {
            new("invalid JSON", Json("k-bad"), Json("""{"id":"bad","numerator":""")),
            new("null value", Json("k-null"), null),
            new("NaN literal", Json("k-nan-literal"), Json("""{"id":"lit","numerator":NaN,"denominator":1}""")),
            new(BigValue, Json("k-big"), bigValue),
            new("invalid UTF-8 key and header", InvalidUtf8, Fraction("utf8", "3", "2"), new Headers { { "trace", InvalidUtf8 } }),
            new("NaN result", InvalidUtf8, Fraction("nan", "0", "0"), new Headers { { "trace", InvalidUtf8 } }),
            new("Infinity result", Json("k-inf"), Fraction("inf", "1", "0")),
        };
        var inputs = new List<Input>();
        for (var i = 0; i < Good; i++)
        {
            inputs.Add(new($"good {i}", Json($"k-{i}"), Fraction($"g-{i}", i.ToString(CultureInfo.InvariantCulture), "1")));
            if (i % 3 == 1 && poison.Count > 0)
            {
                inputs.Add(poison[0]);
                poison.RemoveAt(0);
            }
        }
        return inputs;
    }

    private static void Produce(string brokers, string topic, IEnumerable<Input> inputs)
    {
        // The broker takes a 10 MB record; the client's own limit (1 MB by default) is raised for it.
        using var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig { BootstrapServers = brokers, MessageMaxBytes = 12 << 20 }).Build();
        var failures = new List<string>();
        foreach (var input in inputs)
            producer.Produce(new TopicPartition(topic, input.Label == BigValue ? 1 : 0), new Message<byte[]?, byte[]?> { Key = input.Key, Value = input.Value, Headers = input.Headers ?? [] },
                report => { if (report.Error.IsError) lock (failures) failures.Add($"{input.Label}: {report.Error}"); });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        Assert.Empty(failures);
    }

    [Fact]
    public async Task Poison_is_counted_and_logged_or_dead_lettered_and_every_good_message_is_delivered()
    {
        var topic = kafka.CreateTopic("poison", 2);
        var dlq = kafka.CreateTopic("poison-dlq");
        var inputs = Inputs();
        Produce(kafka.BootstrapServers, topic, inputs);
        var port = FreePort.Next();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Sinks.Filesystem["results"] = new FileSinkConfig { BasePath = _dir };
            c.Dlq.Topic = dlq;
            c.Metrics = new MetricsConfig { Enabled = true, Host = "127.0.0.1", Port = port };
        });
        var logs = new LogCapture();
        await using var worker = await TestWorker.StartAsync(new DividingHandler(), config, loggers: logs);
        await Eventually.True(() => AllCommitted(topic, inputs),
            TimeSpan.FromSeconds(60), () => $"every input committed\n{logs.Text()}");
        using var http = new HttpClient();
        var metrics = PrometheusText.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/metrics"));
        await worker.StopAsync();

        var delivered = WorkerFleetResults();
        var records = TopicRecords.Count(kafka.BootstrapServers, dlq);
        var deadLetters = DeadLetterPayloads(kafka.BootstrapServers, dlq);
        var decodeErrors = (int)metrics.Where(s => s.Name == "drakkar_message_decode_errors_total").Sum(s => s.Value);
        var expectedGood = Enumerable.Range(0, Good).Select(i => $"g-{i}").Append("big").Append("utf8").ToArray();
        var lost = expectedGood.Count(id => !delivered.ContainsKey(id));
        FaultReport.Add("poison input (invalid JSON, null value, NaN literal, 4 MB value, invalid UTF-8 key and header, NaN and Infinity results)",
            $"{inputs.Count} messages: {Good + 2} good, 5 poison", $"{delivered.Count} (file)", (int)records,
            delivered.Values.Sum(n => n - 1), lost,
            $"3 undecodable counted and logged; NaN, Infinity dead-lettered with their key and headers; offsets committed to the end");

        Assert.Equal(expectedGood.Order(), delivered.Keys.Order());
        Assert.All(delivered.Values, n => Assert.Equal(1, n));
        Assert.Equal(3, decodeErrors);
        Assert.Contains(logs.Lines, l => l.Message.StartsWith("Undecodable message", StringComparison.Ordinal) && l.Message.Contains($"{topic}[0]@", StringComparison.Ordinal));
        Assert.Equal(["inf", "nan"], deadLetters.Select(m => m.Id).Order());
        // The dead letter keeps the source key and header byte for byte, so a replay of the source message is lossless.
        var nanRecord = deadLetters.Single(m => m.Id == "nan");
        Assert.Equal(InvalidUtf8, nanRecord.Key);
        Assert.Equal(InvalidUtf8, Assert.Single(nanRecord.Headers, h => h.Key == "trace").Value);
    }

    [Fact]
    public async Task With_the_dlq_broker_down_the_offsets_wait_at_the_poison_and_the_dead_letters_are_written_once_it_is_back()
    {
        using var dlqBroker = EmbeddedKafkaBroker.Start();
        var topic = kafka.CreateTopic("poison-dlq-down", 2);
        var dlq = "dead-letters";
        dlqBroker.CreateTopic(dlq);
        var inputs = Inputs();
        var firstPoison = inputs.Where(i => i.Label != BigValue).ToList().FindIndex(i => i.Label == "NaN result");
        Produce(kafka.BootstrapServers, topic, inputs);
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Sinks.Filesystem["results"] = new FileSinkConfig { BasePath = _dir };
            c.Dlq.Topic = dlq;
            c.Dlq.Brokers = dlqBroker.BootstrapServers;
        });
        var logs = new LogCapture();
        dlqBroker.SetBrokerDown();
        await using var worker = await TestWorker.StartAsync(new DividingHandler(), config, loggers: logs);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // The DLQ producer keeps retrying a write for up to 30 s (its message timeout) before it reports a failure, so
        // a 6 s outage shows as a write that takes 6 s longer. Until it is written the offsets wait at the poison;
        // what comes after it may be delivered meanwhile or wait behind the dead letter in the sink's queue.
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, $"{topic}-g", 2)[0] == firstPoison,
            TimeSpan.FromSeconds(30), () => $"the messages before the poison committed\n{logs.Text()}");
        await Task.Delay(TimeSpan.FromSeconds(6) - clock.Elapsed is { Ticks: > 0 } rest ? rest : TimeSpan.Zero);
        var heldAt = TestWorker.Committed(kafka.BootstrapServers, topic, $"{topic}-g", 2)[0];
        dlqBroker.SetBrokerUp();
        var back = System.Diagnostics.Stopwatch.StartNew();
        await Eventually.True(() => AllCommitted(topic, inputs),
            TimeSpan.FromSeconds(60), () => $"every input committed once the DLQ broker is back\n{logs.Text()}");
        var recovered = back.Elapsed;
        await worker.StopAsync();

        var delivered = WorkerFleetResults();
        var dead = DeadLetterPayloads(dlqBroker.BootstrapServers, dlq).Select(m => m.Id).ToList();
        var expectedGood = Enumerable.Range(0, Good).Select(i => $"g-{i}").Append("big").Append("utf8").ToArray();
        var lost = expectedGood.Count(id => !delivered.ContainsKey(id)) + new[] { "nan", "inf" }.Count(id => !dead.Contains(id));
        FaultReport.Add("DLQ broker down 6 s while poison arrives (NaN and Infinity results)", $"{inputs.Count} messages: {Good + 2} good, 2 to dead-letter",
            $"{delivered.Count} (file)", dead.Count, delivered.Values.Sum(n => n - 1), lost,
            string.Create(CultureInfo.InvariantCulture, $"offsets held at the first poison ({heldAt}) during the outage; DLQ written and every offset committed {recovered.TotalSeconds:0.0} s after"));

        Assert.Equal(firstPoison, heldAt);
        Assert.Equal(0, lost);
        Assert.Equal(["inf", "nan"], dead.Order());
    }

    private bool AllCommitted(string topic, List<Input> inputs) =>
        TestWorker.Committed(kafka.BootstrapServers, topic, $"{topic}-g", 2).SequenceEqual([inputs.Count - 1, 1]);

    private Dictionary<string, int> WorkerFleetResults()
    {
        var counts = new Dictionary<string, int>();
        var file = Path.Combine(_dir, ResultsFile);
        if (!File.Exists(file)) return counts;
        foreach (var line in File.ReadLines(file))
        {
            var id = JsonDocument.Parse(line).RootElement.GetProperty("id").GetString()!;
            counts[id] = counts.GetValueOrDefault(id) + 1;
        }
        return counts;
    }

    /// <summary>
    /// Each dead-lettered payload's id with the record's key and headers (the source message's). Read from the records
    /// themselves: a payload with no JSON form is text in them, which a replay refuses (it replays the source message).
    /// </summary>
    private static List<(string Id, byte[]? Key, List<(string Key, byte[] Value)> Headers)> DeadLetterPayloads(string brokers, string topic) =>
        [.. TopicRecords.ReadAll(brokers, topic).SelectMany(r =>
        {
            var record = JsonDocument.Parse(r.Value).RootElement;
            var payloads = record.GetProperty("original_payloads").EnumerateArray().Select(p => p.GetString()!).ToList();
            if (payloads.Any(p => p.StartsWith("[unserializable ", StringComparison.Ordinal)))
                Assert.True(record.TryGetProperty("unwritable_payloads", out _), "a record with a payload that has no JSON form lists it");
            return payloads.Select(p => (IdOf(p), r.Key, r.Headers.Select(h => (h.Key, h.GetValueBytes())).ToList()));
        })];

    /// <summary>The id in a dead-lettered payload: its JSON, or, for data with no JSON form, the text the DLQ keeps instead.</summary>
    private static string IdOf(string text)
    {
        if (!text.StartsWith("[unserializable Quotient:", StringComparison.Ordinal))
            return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
        var id = text.Split("Id = ")[1];
        return id[..id.IndexOf(',', StringComparison.Ordinal)];
    }
}
