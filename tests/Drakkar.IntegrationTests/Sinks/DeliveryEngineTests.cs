using System.Collections.Concurrent;
using System.Text;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Drakkar.Sinks.Dlq;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

/// <summary>A measurement whose generated JSON writer throws for a non-finite <see cref="Value"/>.</summary>
[Payload]
public sealed partial record Gauge(string Id, double Value);

/// <summary>Wraps a real sink and records the size of every batch the engine hands it, in call order.</summary>
internal sealed class CountingSink(ISink inner) : ISink
{
    public ConcurrentQueue<int> BatchSizes { get; } = new();
    public int Calls => BatchSizes.Count;
    public string Kind => inner.Kind;
    public string Name => inner.Name;
    public bool IsIdempotent => inner.IsIdempotent;
    public bool IsConnected => inner.IsConnected;
    public ValueTask ConnectAsync(CancellationToken cancellationToken) => inner.ConnectAsync(cancellationToken);
    public ValueTask CloseAsync(CancellationToken cancellationToken) => inner.CloseAsync(cancellationToken);

    public ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        BatchSizes.Enqueue(batch.Count);
        return inner.DeliverAsync(batch, cancellationToken);
    }
}

/// <summary>
/// The delivery engine against real destinations: many hook calls share one sink call, and a payload the destination
/// refuses only sends its own hook call's payloads to the DLQ.
/// </summary>
[Collection(SinksCollection.Name)]
public sealed class DeliveryEngineRealSinkTests(PostgresServer postgres, KafkaBroker kafka)
{
    private const int Groups = 100;
    private const int Poison = 57;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static int _databases;

    /// <summary>One batch of up to 100 payloads, lingering long enough that 100 hook calls queued at once share it.</summary>
    private static SinkManagerOptions OneBatchOf100() =>
        new() { Batching = (_, _) => new SinkBatching(Groups, TimeSpan.FromSeconds(2)) };

    /// <summary>Hook call i comes from its own source message: partition i % 4, offset 1000 + i.</summary>
    private static Drakkar.Pipeline.DeliveryOrigin OriginOf(int i) => Origin("orders", i % 4, 1000 + i);

    [Fact]
    public async Task A_poison_payload_in_a_batch_of_100_dead_letters_only_its_own_group()
    {
        var db = postgres.CreateDatabase($"engine_{Interlocked.Increment(ref _databases)}_{Environment.ProcessId}");
        await using (var connection = new NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            // A trigger records the statement that wrote each row: insert mode copies into a plain table.
            await using var create = new NpgsqlCommand("""
                CREATE TABLE audit (id text NOT NULL, count integer, score double precision, note text, tags jsonb);
                CREATE TABLE statements (text text);
                CREATE FUNCTION record_statement() RETURNS trigger LANGUAGE plpgsql AS
                  $$ BEGIN INSERT INTO statements VALUES (current_query()); RETURN NEW; END $$;
                CREATE TRIGGER record_statement BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION record_statement();
                """, connection);
            await create.ExecuteNonQueryAsync();
        }
        var masker = new SinkSecretMasker();
        var sink = new CountingSink(new Drakkar.Sinks.Postgres.PostgresSink("main", new PostgresSinkConfig { Dsn = db }, masker));
        var dlq = new RecordingDlq();
        var manager = new SinkManager([sink], dlq, OneBatchOf100(), new DrakkarMetrics(), NullLoggerFactory.Instance, masker);
        await manager.StartAsync(default);

        // 100 hook calls, one payload each; the poison one has a null id, which audit.id (NOT NULL) refuses.
        var deliveries = Enumerable.Range(0, Groups).Select(i =>
        {
            var result = new CollectResult();
            result.Postgres.Add(PostgresPayload.Of("audit", i == Poison ? Reading.Sample(i) with { Id = null! } : Reading.Sample(i)));
            return manager.DeliverAsync(result, OriginOf(i), default).AsTask();
        }).ToArray();
        await Task.WhenAll(deliveries).WaitAsync(Patience);

        // One sink call carried all 100 (the transaction failed as a whole), then each group was tried on its own.
        var sizes = sink.BatchSizes.ToArray();
        Assert.Equal(Groups, sizes[0]);
        Assert.Equal(1 + Groups, sizes.Length);
        Assert.All(sizes.Skip(1), size => Assert.Equal(1, size));

        var letter = Assert.Single(dlq.Letters);
        Assert.Equal([1000L + Poison], letter.Messages.Select(m => m.Offset));
        Assert.Equal(Poison % 4, letter.Partition);
        Assert.Contains("23502", letter.Error);
        Assert.Null(((Reading)Assert.Single(letter.Payloads).Data.Value).Id);

        var ids = new List<string>();
        await using (var connection = new NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            await using var select = new NpgsqlCommand("SELECT id FROM audit", connection);
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync()) ids.Add(reader.GetString(0));
        }
        Assert.Equal(Enumerable.Range(0, Groups).Where(i => i != Poison).Select(i => $"r-{i}").Order(), ids.Order());
        await using (var connection = new NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            await using var statements = new NpgsqlCommand("SELECT string_agg(DISTINCT text, ' | ') FROM statements", connection);
            Assert.Matches(@"^COPY ""audit"" \(.*\) FROM STDIN \(FORMAT BINARY\)$", (string)(await statements.ExecuteScalarAsync())!);
        }
        Assert.All(deliveries, d => Assert.True(d.IsCompletedSuccessfully));
        var stats = manager.StatsOf("postgres", "main");
        Assert.Equal(Groups - 1, stats.Delivered);
        Assert.Equal(1, stats.DeadLettered);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_payload_that_cannot_become_json_in_a_kafka_batch_of_100_dead_letters_only_its_own_group()
    {
        var topic = kafka.CreateTopic("engine-results");
        var dlqTopic = kafka.CreateTopic("engine-results_dlq");
        var metrics = new DrakkarMetrics();
        var masker = new SinkSecretMasker();
        var sink = new CountingSink(new Drakkar.Sinks.Kafka.KafkaSink("results", new KafkaSinkConfig { Topic = topic }, new KafkaConfig { Brokers = kafka.BootstrapServers },
            NullLogger.Instance, masker));
        var dlq = new KafkaDeadLetterQueue(dlqTopic, kafka.BootstrapServers, metrics, NullLogger.Instance, masker);
        var manager = new SinkManager([sink], dlq, OneBatchOf100(), metrics, NullLoggerFactory.Instance, masker);
        await manager.StartAsync(default);

        var deliveries = Enumerable.Range(0, Groups).Select(i =>
        {
            var result = new CollectResult();
            result.Kafka.Add(KafkaPayload.Of(new Gauge($"g-{i}", i == Poison ? double.NaN : i), Encoding.UTF8.GetBytes($"g-{i}")));
            return manager.DeliverAsync(result, OriginOf(i), default).AsTask();
        }).ToArray();
        await Task.WhenAll(deliveries).WaitAsync(Patience);
        var stats = manager.StatsOf("kafka", "results");
        await manager.CloseAsync();

        // The sink reported the one failure per payload: one call, no isolation round.
        Assert.Equal([Groups], sink.BatchSizes);
        Assert.Equal(Groups - 1, stats.Delivered);
        Assert.Equal(1, stats.DeadLettered);
        Assert.All(deliveries, d => Assert.True(d.IsCompletedSuccessfully));

        var records = Consume(kafka.BootstrapServers, topic, Groups - 1);
        Assert.Equal(Enumerable.Range(0, Groups).Where(i => i != Poison).Select(i => $"g-{i}").Order(),
            records.Select(r => Encoding.UTF8.GetString(r.Message.Key!)).Order());
        Assert.Equal(Groups - 1, HighWatermark(topic));

        var letter = Json(Assert.Single(Consume(kafka.BootstrapServers, dlqTopic, 1)).Message.Value);
        Assert.Equal(1, HighWatermark(dlqTopic));
        Assert.Equal([1000L + Poison], letter.GetProperty("offsets").EnumerateArray().Select(o => o.GetInt64()));
        Assert.Equal(Poison % 4, letter.GetProperty("partition").GetInt32());
        Assert.Contains("cannot be written as JSON", letter.GetProperty("error").GetString());
        Assert.Contains($"g-{Poison}", Assert.Single(letter.GetProperty("original_payloads").EnumerateArray()).GetString());
    }

    /// <summary>How many records partition 0 of <paramref name="topic"/> holds.</summary>
    private long HighWatermark(string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "watermarks" }).Build();
        return consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10)).High.Value;
    }
}

/// <summary>The delivery engine's queue with scripted sinks: the breaker and closing.</summary>
public sealed class DeliveryEngineQueueTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_open_breaker_sends_every_group_of_a_queued_batch_to_the_dlq_without_calling_the_sink()
    {
        const int groups = 6;
        var sink = new ScriptedSink("http", "hook") { Behavior = (_, _) => throw new SinkTransientException("HTTP 500") };
        var dlq = new RecordingDlq();
        var manager = Manager([sink], dlq, new SinkManagerOptions
        {
            CircuitBreaker = new CircuitBreakerConfig { FailureThreshold = 1, CooldownSeconds = 3600 },
            // A queue of six groups is one batch: the drainer lingers until all six are in.
            Batching = (_, _) => new SinkBatching(groups, TimeSpan.FromSeconds(5)),
            Delay = (_, _) => Task.CompletedTask,
        });

        // One failure opens the breaker (a group of six payloads fills a batch on its own, so nothing lingers).
        await manager.DeliverAsync(Http(groups), Origin("orders", 0, 1), default).AsTask().WaitAsync(Patience);
        Assert.Equal(CircuitState.Open, manager.StatsOf("http", "hook").Circuit);
        Assert.Equal(1, sink.Calls);
        Assert.Single(dlq.Letters);

        var deliveries = Enumerable.Range(0, groups)
            .Select(i => manager.DeliverAsync(Http(1), Origin("orders", i % 2, 100 + i), default).AsTask()).ToArray();
        await Task.WhenAll(deliveries).WaitAsync(Patience);

        Assert.Equal(1, sink.Calls);
        var rejected = dlq.Letters.Skip(1).ToArray();
        Assert.Equal(groups, rejected.Length);
        Assert.All(rejected, letter =>
        {
            Assert.Equal(SinkManager.CircuitOpenError, letter.Error);
            Assert.Equal(0, letter.AttemptCount);
            Assert.Single(letter.Payloads);
        });
        Assert.Equal(Enumerable.Range(0, groups).Select(i => 100L + i), rejected.Select(l => Assert.Single(l.Messages).Offset).Order());
        Assert.All(rejected, letter => Assert.Equal(letter.Messages[0].Offset % 2, letter.Partition));
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_probe_batch_refused_for_one_poison_payload_does_not_dead_letter_its_healthy_neighbours_as_circuit_open()
    {
        const int groups = 20;
        var clock = new ManualClock();
        var sink = new ScriptedSink("http", "hook")
        {
            Behavior = async (batch, call) =>
            {
                await Task.Delay(20); // a real round trip: the call does not finish synchronously
                if (call == 1) throw new SinkTransientException("HTTP 503 (outage)");
                if (batch.Payloads.Any(p => ((Reading)p.Data.Value).Id == "poison")) throw new InvalidOperationException("HTTP 422 (poison)");
            },
        };
        var dlq = new RecordingDlq();
        var manager = Manager([sink], dlq, new SinkManagerOptions
        {
            Time = clock,
            CircuitBreaker = new CircuitBreakerConfig { FailureThreshold = 1, CooldownSeconds = 30 },
            Batching = (_, _) => new SinkBatching(groups, TimeSpan.FromSeconds(5)),
            Delay = (_, _) => Task.CompletedTask,
        });

        // An outage opens the breaker; after the cooldown the next batch is the half-open probe.
        await manager.DeliverAsync(Http(groups), Origin("orders", 0, 1), default).AsTask().WaitAsync(Patience);
        Assert.Equal(CircuitState.Open, manager.StatsOf("http", "hook").Circuit);
        clock.Advance(TimeSpan.FromSeconds(31));

        // The sink is healthy again; only one payload of the batch is poison.
        var deliveries = Enumerable.Range(0, groups).Select(i =>
        {
            var result = new CollectResult();
            result.Http.Add(HttpPayload.Of(i == 10 ? Reading.Sample(i) with { Id = "poison" } : Reading.Sample(i)));
            return manager.DeliverAsync(result, Origin("orders", 0, 100 + i), default).AsTask();
        }).ToArray();
        await Task.WhenAll(deliveries).WaitAsync(Patience);

        var letters = dlq.Letters.Skip(1).ToArray();
        var rejected = letters.Where(l => l.Error == SinkManager.CircuitOpenError).Select(l => l.Messages[0].Offset).Order().ToArray();
        Assert.True(rejected.Length == 0,
            $"{rejected.Length} groups of the probe batch (one poison, the rest healthy) were dead-lettered as '{SinkManager.CircuitOpenError}' (offsets {string.Join(", ", rejected)})");
        var letter = Assert.Single(letters);
        Assert.Equal([110L], letter.Messages.Select(m => m.Offset));
        Assert.Equal(groups - 1, manager.StatsOf("http", "hook").Delivered);
        await manager.CloseAsync();
    }

    /// <summary>Takes its time over every batch (honouring cancellation, as real sinks do) and notes what it wrote and when it closed.</summary>
    private sealed class SlowSink : ISink
    {
        private int _written;
        private int _closed;

        public int Written => Volatile.Read(ref _written);
        public int WrittenAtClose { get; private set; } = -1;
        public int WrittenAfterClose { get; private set; }
        public bool Closed => Volatile.Read(ref _closed) == 1;
        public string Kind => "http";
        public string Name => "hook";
        public bool IsIdempotent => false;
        public bool IsConnected => !Closed;
        public ValueTask ConnectAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
        {
            await Task.Delay(25, cancellationToken);
            if (Closed) WrittenAfterClose += batch.Count;
            Interlocked.Add(ref _written, batch.Count);
        }

        public ValueTask CloseAsync(CancellationToken cancellationToken)
        {
            WrittenAtClose = Written;
            Volatile.Write(ref _closed, 1);
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task Closing_delivers_everything_queued_before_the_sinks_close()
    {
        const int groups = 40;
        var sink = new SlowSink();
        var manager = Manager([sink], new RecordingDlq(), new SinkManagerOptions
        {
            // Four payloads a call, one call at a time: the queue takes ten slow calls to empty.
            Batching = (_, _) => new SinkBatching(4, TimeSpan.Zero),
            Delay = (_, _) => Task.CompletedTask,
        });
        await manager.StartAsync(default);

        var deliveries = Enumerable.Range(0, groups)
            .Select(i => manager.DeliverAsync(Http(1), Origin("orders", i % 3, i), default).AsTask()).ToArray();
        Assert.True(manager.InFlightPayloads > 4, $"only {manager.InFlightPayloads} payloads were queued when closing began");

        await manager.CloseAsync().WaitAsync(Patience);

        Assert.All(deliveries, d => Assert.True(d.IsCompletedSuccessfully, $"a delivery ended {d.Status}"));
        Assert.Equal(groups, sink.Written);
        Assert.True(sink.Closed);
        Assert.Equal(groups, sink.WrittenAtClose);
        Assert.Equal(0, sink.WrittenAfterClose);
        Assert.Equal(groups, manager.StatsOf("http", "hook").Delivered);
    }
}
