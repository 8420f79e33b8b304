using System.Text;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Drakkar.Sinks.Dlq;
using Microsoft.Extensions.Logging.Abstractions;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

[Collection(SinksCollection.Name)]
public sealed class KafkaSinkTests(KafkaBroker kafka)
{
    private KafkaDeadLetterQueue Dlq(string topic, DrakkarMetrics metrics, int messageTimeoutMs = 30_000) =>
        new(topic, kafka.BootstrapServers, metrics, NullLogger.Instance, new(), messageTimeoutMs: messageTimeoutMs);

    [Fact]
    public async Task Records_carry_the_compact_json_of_the_data_and_the_given_key()
    {
        var topic = kafka.CreateTopic("results");
        var config = new DrakkarConfig();
        config.Kafka.Brokers = kafka.BootstrapServers;
        config.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = topic };
        var manager = SinkManager.Create(config, [new(SinkKind.Kafka, "results")], new SinkManagerOptions(), new DrakkarMetrics(),
            NullLoggerFactory.Instance, sourceTopic: kafka.CreateTopic("src"));
        await manager.StartAsync(default);
        var result = new CollectResult();
        for (var i = 0; i < 5; i++) result.Kafka.Add(KafkaPayload.Of(Reading.Sample(i), Encoding.UTF8.GetBytes($"id-{i}")));
        result.Kafka.Add(KafkaPayload.Of(Reading.Sample(5)));

        await manager.DeliverAsync(result, Origin(), default);
        await manager.CloseAsync();

        var records = Consume(kafka.BootstrapServers, topic, 6);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal($"id-{i}", Encoding.UTF8.GetString(records[i].Message.Key!));
            Assert.Equal(PayloadData.Of(Reading.Sample(i)).ToJson(), Encoding.UTF8.GetString(records[i].Message.Value));
        }
        Assert.Null(records[5].Message.Key);
        Assert.Equal("{\"id\":\"r-3\",\"count\":3,\"score\":1.5,\"note\":null,\"tags\":[\"t3\",\"x\"]}",
            Encoding.UTF8.GetString(records[3].Message.Value));
        Assert.Equal(6, manager.StatsOf("kafka", "results").Delivered);
    }

    /// <summary>"Broker: Message size too large (MsgSizeTooLarge)" named neither the record's size nor the limits.</summary>
    [Fact]
    public async Task A_record_too_large_is_dead_lettered_with_its_size_and_the_limits_that_apply()
    {
        var topic = kafka.CreateTopic("large-results");
        var source = kafka.CreateTopic("large-src");
        var config = new DrakkarConfig();
        config.Kafka.Brokers = kafka.BootstrapServers;
        config.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = topic };
        var manager = SinkManager.Create(config, [new(SinkKind.Kafka, "results")], new SinkManagerOptions(), new DrakkarMetrics(),
            NullLoggerFactory.Instance, sourceTopic: source);
        await manager.StartAsync(default);
        var large = Reading.Sample(1) with { Note = new string('x', 2_000_000) };
        var result = new CollectResult();
        result.Kafka.Add(KafkaPayload.Of(large));

        await manager.DeliverAsync(result, Origin(), default);
        await manager.CloseAsync();

        var letter = Json(Assert.Single(Consume(kafka.BootstrapServers, $"{source}_dlq", 1)).Message.Value);
        var error = letter.GetProperty("error").GetString()!;
        Assert.Contains("(MsgSizeTooLarge)", error, StringComparison.Ordinal);
        Assert.Contains($"its value is {PayloadData.Of(large).ToJsonBytes().Length} bytes, over the topic's max.message.bytes", error, StringComparison.Ordinal);
    }

    /// <summary>
    /// librdkafka refuses a record over message.max.bytes at the produce call; that refusal failed every later record of
    /// the batch too, with its error, so valid records of other hook calls went to the DLQ as "too large".
    /// </summary>
    [Fact]
    public async Task A_record_the_producer_refuses_fails_alone_and_the_records_after_it_in_the_batch_are_delivered()
    {
        var topic = kafka.CreateTopic("large-neighbours");
        var sink = new Drakkar.Sinks.Kafka.KafkaSink("results", new KafkaSinkConfig { Topic = topic }, new KafkaConfig { Brokers = kafka.BootstrapServers },
            NullLogger.Instance, new SinkSecretMasker());
        await sink.ConnectAsync(default);
        var large = Reading.Sample(1) with { Note = new string('x', 2_000_000) };
        var batch = new SinkBatch("src", 0, [KafkaPayload.Of(Reading.Sample(0)), KafkaPayload.Of(large), KafkaPayload.Of(Reading.Sample(2)), KafkaPayload.Of(Reading.Sample(3))]);

        await sink.DeliverAsync(batch, default);
        await sink.CloseAsync(default);

        Assert.Equal([false, true, false, false], Enumerable.Range(0, batch.Count).Select(i => batch.FailureOf(i) is not null));
        Assert.Contains($"its value is {PayloadData.Of(large).ToJsonBytes().Length} bytes", batch.FailureOf(1)!.Message, StringComparison.Ordinal);
        Assert.Equal([PayloadData.Of(Reading.Sample(0)).ToJson(), PayloadData.Of(Reading.Sample(2)).ToJson(), PayloadData.Of(Reading.Sample(3)).ToJson()],
            Consume(kafka.BootstrapServers, topic, 3).Select(r => Encoding.UTF8.GetString(r.Message.Value)));
    }

    /// <summary>
    /// librdkafka holds at most 100,000 records in its local queue (queue.buffering.max.messages); a batch larger than
    /// what is free fails the produce call with Local_QueueFull. That refusal failed the rest of the batch unsent; the
    /// sink now waits for reports to free the queue and goes on. The broker is down while the batch is handed over, so
    /// nothing drains and the queue surely fills.
    /// </summary>
    [Fact]
    public async Task A_batch_larger_than_the_producers_local_queue_waits_for_room_and_every_record_is_delivered()
    {
        using var broker = Drakkar.Kafka.Embedded.EmbeddedKafkaBroker.Start();
        const string topic = "queue-full";
        broker.CreateTopic(topic);
        var sink = new Drakkar.Sinks.Kafka.KafkaSink("results", new KafkaSinkConfig { Topic = topic }, new KafkaConfig { Brokers = broker.BootstrapServers },
            NullLogger.Instance, new SinkSecretMasker());
        await sink.ConnectAsync(default);
        await sink.DeliverAsync(new SinkBatch("src", 0, [KafkaPayload.Of(Reading.Sample(0))]), default);

        const int records = 100_050;
        var batch = new SinkBatch("src", 0, [.. Enumerable.Range(0, records).Select(i => KafkaPayload.Of(Reading.Sample(i)))]);
        broker.SetBrokerDown();
        var delivering = sink.DeliverAsync(batch, default).AsTask();
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.False(delivering.IsCompleted);
        broker.SetBrokerUp();
        await delivering.WaitAsync(TimeSpan.FromSeconds(60));
        await sink.CloseAsync(default);

        Assert.Equal(0, Enumerable.Range(0, batch.Count).Count(i => batch.FailureOf(i) is not null));
        // The high watermark: the mock broker keeps only the latest 50,000 or so records of a partition (its low
        // watermark moves), so the records present are not all that were written.
        using var reader = new Confluent.Kafka.ConsumerBuilder<Confluent.Kafka.Ignore, Confluent.Kafka.Ignore>(
            new Confluent.Kafka.ConsumerConfig { BootstrapServers = broker.BootstrapServers, GroupId = "queue-full-count" }).Build();
        Assert.Equal(1 + records, reader.QueryWatermarkOffsets(new Confluent.Kafka.TopicPartition(topic, 0), TimeSpan.FromSeconds(10)).High.Value);
    }

    [Fact]
    public async Task Retry_exhaustion_lands_in_the_dlq_with_the_payload_data_and_source_identity_intact()
    {
        var dlqTopic = kafka.CreateTopic("source_dlq");
        var metrics = new DrakkarMetrics();
        var sink = new ScriptedSink("http", "webhook") { Behavior = (_, _) => throw new InvalidOperationException("HTTP 500 Internal Server Error") };
        var manager = new SinkManager([sink], Dlq(dlqTopic, metrics), new SinkManagerOptions
        {
            MaxRetries = 2,
            OnDeliveryError = _ => ValueTask.FromResult(DeliveryAction.Retry),
        }, metrics, NullLoggerFactory.Instance);
        await manager.StartAsync(default);

        await manager.DeliverAsync(Http(2), Origin("orders", 4, 17), default);
        await manager.CloseAsync();

        var record = Assert.Single(Consume(kafka.BootstrapServers, dlqTopic, 1));
        Assert.Equal("key-17", Encoding.UTF8.GetString(record.Message.Key!));
        Assert.Equal("trace-17", Encoding.UTF8.GetString(record.Message.Headers.GetLastBytes("trace-id")));
        var letter = Json(record.Message.Value);
        Assert.Equal("webhook", letter.GetProperty("sink_name").GetString());
        Assert.Equal("http", letter.GetProperty("sink_type").GetString());
        Assert.Equal(3, letter.GetProperty("attempt_count").GetInt32());
        Assert.Equal("orders", letter.GetProperty("source_topic").GetString());
        Assert.Equal(4, letter.GetProperty("partition").GetInt32());
        Assert.Equal([17L], letter.GetProperty("offsets").EnumerateArray().Select(o => o.GetInt64()));
        Assert.Contains("HTTP 500", letter.GetProperty("error").GetString());
        Assert.True(letter.GetProperty("timestamp").GetDouble() > 1.7e9);
        var originals = letter.GetProperty("original_payloads").EnumerateArray().Select(p => p.GetString()!).ToArray();
        Assert.Equal(2, originals.Length);
        var first = Json(Encoding.UTF8.GetBytes(originals[0]));
        Assert.Equal("r-0", first.GetProperty("id").GetString());
        var second = PayloadDecoder.Decode<Reading>(Encoding.UTF8.GetBytes(originals[1])).Payload!;
        Assert.Equal(Reading.Sample(1) with { Tags = second.Tags }, second);
        Assert.Equal(Reading.Sample(1).Tags, second.Tags);
        var source = Assert.Single(letter.GetProperty("source_messages").EnumerateArray());
        Assert.Equal("key-17", Encoding.UTF8.GetString(source.GetProperty("key").GetBytesFromBase64()));
        var binary = source.GetProperty("headers").EnumerateArray().Single(h => h.GetProperty("key").GetString() == "binary");
        Assert.Equal(new byte[] { 0, 1, 255 }, binary.GetProperty("value").GetBytesFromBase64());
        Assert.Equal(2, metrics.SinkDlqMessages.Value("http", "webhook"));
    }

    [Fact]
    public async Task A_source_failure_dead_letters_the_source_messages_themselves()
    {
        var dlqTopic = kafka.CreateTopic("arrange_dlq");
        var metrics = new DrakkarMetrics();
        var manager = new SinkManager([], Dlq(dlqTopic, metrics), new SinkManagerOptions(), metrics, NullLoggerFactory.Instance);
        await manager.StartAsync(default);
        await manager.DeadLetterAsync(Origin("orders", 0, 5, 6), "arrange failed: boom", default);
        await manager.CloseAsync();

        var letter = Json(Assert.Single(Consume(kafka.BootstrapServers, dlqTopic, 1)).Message.Value);
        Assert.Equal(["{\"request\":5}", "{\"request\":6}"], letter.GetProperty("original_payloads").EnumerateArray().Select(p => p.GetString()));
        Assert.Equal("arrange failed: boom", letter.GetProperty("error").GetString());
        // Each value is stored once: UTF-8 text lives in original_payloads only (no base64 copy in source_messages).
        Assert.True(letter.GetProperty("source_failure").GetBoolean());
        Assert.False(letter.GetProperty("source_messages")[1].TryGetProperty("value", out _));
    }

    [Fact]
    public async Task The_dlq_producer_is_built_by_the_first_dead_letter_not_at_start()
    {
        var dlqTopic = kafka.CreateTopic("lazy_dlq");
        var metrics = new DrakkarMetrics();
        var dlq = Dlq(dlqTopic, metrics);
        var manager = new SinkManager([], dlq, new SinkManagerOptions(), metrics, NullLoggerFactory.Instance);
        await manager.StartAsync(default);
        Assert.False(dlq.HasProducer, "the DLQ built its producer at start");

        await manager.DeadLetterAsync(Origin("orders", 1, 9), "arrange failed: lazy", default);
        Assert.True(dlq.HasProducer);
        await manager.CloseAsync();
        Assert.False(dlq.HasProducer);

        var letter = Json(Assert.Single(Consume(kafka.BootstrapServers, dlqTopic, 1)).Message.Value);
        Assert.Equal("arrange failed: lazy", letter.GetProperty("error").GetString());
        Assert.Equal([9L], letter.GetProperty("offsets").EnumerateArray().Select(o => o.GetInt64()));
    }

    [Fact]
    public async Task While_the_dlq_broker_is_down_delivery_does_not_settle_and_nothing_is_lost_once_it_is_back()
    {
        var dlqTopic = kafka.CreateTopic("outage_dlq");
        var metrics = new DrakkarMetrics();
        var sink = new ScriptedSink("http", "webhook") { Behavior = (_, _) => throw new InvalidOperationException("HTTP 503") };
        var manager = new SinkManager([sink], Dlq(dlqTopic, metrics, messageTimeoutMs: 1000), new SinkManagerOptions(), metrics, NullLoggerFactory.Instance);
        await manager.StartAsync(default);

        Task delivery;
        kafka.Broker.SetBrokerDown();
        try
        {
            delivery = manager.DeliverAsync(Http(3), Origin("orders", 0, 1, 2, 3), default).AsTask();
            await Eventually.True(() => metrics.DlqSendFailures.Value() >= 2, TimeSpan.FromSeconds(30), "two failed DLQ writes to be counted");
            Assert.False(delivery.IsCompleted, "DeliverAsync settled while the DLQ could not be written");
        }
        finally
        {
            kafka.Broker.SetBrokerUp();
        }

        await delivery.WaitAsync(TimeSpan.FromSeconds(60));
        await manager.CloseAsync();
        var records = Consume(kafka.BootstrapServers, dlqTopic, 1);
        var letter = Json(Assert.Single(records).Message.Value);
        Assert.Equal(3, letter.GetProperty("original_payloads").GetArrayLength());
        Assert.Equal([1L, 2L, 3L], letter.GetProperty("offsets").EnumerateArray().Select(o => o.GetInt64()));
    }

    [Fact]
    public async Task A_dlq_record_the_broker_refuses_as_too_large_is_cut_then_blocks_only_its_partition_visibly_until_it_is_taken()
    {
        var dlqTopic = kafka.CreateTopic("refused_dlq");
        var metrics = new DrakkarMetrics();
        // Waits shortened (the blocked retry is every 30 s in production) so the recovery is seen within the test.
        var dlq = new KafkaDeadLetterQueue(dlqTopic, kafka.BootstrapServers, metrics, NullLogger.Instance, new(),
            (delay, token) => Task.Delay(TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds, 200)), token), messageTimeoutMs: 5_000);
        var big = new SourceMessage { Topic = "orders", Partition = 2, Offset = 17, Value = Encoding.UTF8.GetBytes(new string('x', 900_000)) };
        var letter = new DeadLetter("", "", "arrange failed", [], 1, "orders", 2, [big], DateTimeOffset.UtcNow);

        // The broker refuses every produce as too large: the record is cut down step by step, then the partition is blocked.
        kafka.Broker.PushRequestErrors(0, [.. Enumerable.Repeat(Confluent.Kafka.ErrorCode.MsgSizeTooLarge, 30)]);
        Task write;
        try
        {
            write = dlq.WriteAsync(letter, default).AsTask();
            await Eventually.True(() => dlq.BlockedPartitions.ContainsKey(("orders", 2)), TimeSpan.FromSeconds(30), "partition 2 reported blocked");
            Assert.Contains("orders[2] offsets 17", dlq.BlockedPartitions[("orders", 2)]);
            Assert.Contains("MsgSizeTooLarge", dlq.BlockedPartitions[("orders", 2)]);
            Assert.Equal(1, metrics.DlqBlockedPartitions.Value());
            Assert.False(write.IsCompleted, "the write gave up: the dead letter would be lost");
        }
        finally
        {
            kafka.Broker.ClearRequestErrors(0);
        }

        await write.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(dlq.BlockedPartitions);
        Assert.Equal(0, metrics.DlqBlockedPartitions.Value());
        await dlq.CloseAsync(default);
        var stored = Json(Assert.Single(Consume(kafka.BootstrapServers, dlqTopic, 1)).Message.Value);
        Assert.True(stored.GetProperty("truncated").GetBoolean());
        Assert.Contains("the original is at orders[2]@17", stored.GetProperty("original_payloads")[0].GetString());
    }

    [Fact]
    public async Task A_refused_produce_fails_the_batch_with_the_broker_reason()
    {
        var topic = kafka.CreateTopic("refused");
        var config = new DrakkarConfig();
        config.Kafka.Brokers = kafka.BootstrapServers;
        config.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = topic };
        var masker = new SinkSecretMasker();
        var dlq = new RecordingDlq();
        var errors = new List<DeliveryError>();
        var manager = new SinkManager([new Drakkar.Sinks.Kafka.KafkaSink("results", config.Sinks.Kafka["results"], new KafkaConfig { Brokers = kafka.BootstrapServers }, NullLogger.Instance, masker)],
            dlq, new SinkManagerOptions { OnDeliveryError = e => { errors.Add(e); return ValueTask.FromResult(DeliveryAction.Dlq); } },
            new DrakkarMetrics(), NullLoggerFactory.Instance, masker);
        await manager.StartAsync(default);
        await manager.DeliverAsync(new CollectResult { Kafka = { KafkaPayload.Of(Reading.Sample(1)) } }, Origin(), default);

        kafka.Broker.PushRequestErrors(0, Confluent.Kafka.ErrorCode.TopicAuthorizationFailed);
        await manager.DeliverAsync(new CollectResult { Kafka = { KafkaPayload.Of(Reading.Sample(2)), KafkaPayload.Of(Reading.Sample(3)) } }, Origin(), default);
        await manager.CloseAsync();

        var error = Assert.Single(errors);
        Assert.Contains(topic, error.Error);
        Assert.Contains("TopicAuthorizationFailed", error.Error);
        Assert.Equal(2, Assert.Single(dlq.Letters).Payloads.Count);
        Assert.Equal(1, manager.StatsOf("kafka", "results").Delivered);
    }

    [Fact]
    public void The_kafka_sink_is_idempotent_only_with_broker_idempotence_and_needs_a_topic()
    {
        var masker = new SinkSecretMasker();
        Assert.False(new Drakkar.Sinks.Kafka.KafkaSink("r", new KafkaSinkConfig { Topic = "t" }, new KafkaConfig { Brokers = "b:9092" }, NullLogger.Instance, masker).IsIdempotent);
        Assert.True(new Drakkar.Sinks.Kafka.KafkaSink("r", new KafkaSinkConfig { Topic = "t", Idempotent = true }, new KafkaConfig { Brokers = "b:9092" }, NullLogger.Instance, masker).IsIdempotent);
        Assert.Contains("sinks.kafka.r.topic is required", Assert.Throws<SinkConfigurationException>(() =>
            new Drakkar.Sinks.Kafka.KafkaSink("r", new KafkaSinkConfig(), new KafkaConfig { Brokers = "b:9092" }, NullLogger.Instance, masker)).Message);
    }

    [Fact]
    public void The_dlq_topic_defaults_to_the_source_topic_with_a_dlq_suffix_and_brokers_inherit()
    {
        var kafkaConfig = new KafkaConfig { Brokers = "k1:9092" };
        Assert.Equal("search-requests_dlq", KafkaDeadLetterQueue.TopicFor(new DlqConfig(), "search-requests"));
        Assert.Equal("failures", KafkaDeadLetterQueue.TopicFor(new DlqConfig { Topic = "failures" }, "search-requests"));
        Assert.Equal("k1:9092", KafkaDeadLetterQueue.BrokersFor(new DlqConfig(), kafkaConfig));
        Assert.Equal("k2:9092", KafkaDeadLetterQueue.BrokersFor(new DlqConfig { Brokers = "k2:9092" }, kafkaConfig));
    }
}
