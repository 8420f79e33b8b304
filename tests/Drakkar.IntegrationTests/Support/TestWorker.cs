using Confluent.Kafka;
using Drakkar.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.IntegrationTests.Support;

/// <summary>Starts in-process workers on the test broker and looks at what the group committed.</summary>
internal static class TestWorker
{
    public static DrakkarConfig Config(string brokers, string topic, string group, Action<DrakkarConfig>? adjust = null)
    {
        var config = new DrakkarConfig
        {
            Kafka = { Brokers = brokers, SourceTopic = topic, ConsumerGroup = group, CommitIntervalMs = 50, SessionTimeoutMs = 6000, HeartbeatIntervalMs = 500 },
            Executor = { MaxExecutors = 2, DrainTimeoutSeconds = 20, TaskTimeoutSeconds = 30 },
            Metrics = { Enabled = false },
        };
        adjust?.Invoke(config);
        return config;
    }

    /// <param name="loggers">Where the worker logs (a <see cref="LogCapture"/> when the test reads its logs); by default nowhere.</param>
    /// <param name="probeHandler">Makes the handler the debug UI's probe action runs; without it the UI offers no probe.</param>
    public static Task<WorkerHost> StartAsync(DrakkarHandlerBase handler, DrakkarConfig config, string workerId = "test-worker",
        Drakkar.Sinks.SinkRegistry? plugins = null, Microsoft.Extensions.Logging.ILoggerFactory? loggers = null,
        Func<DrakkarHandlerBase>? probeHandler = null, CancellationToken cancellationToken = default)
    {
        var parts = DrakkarApp.DefaultParts(plugins);
        // DRAKKAR_TEST_LOGS=1 shows the workers' own logs (console format, debug level) when a test needs explaining.
        loggers ??= Environment.GetEnvironmentVariable("DRAKKAR_TEST_LOGS") == "1"
            ? Drakkar.Observability.Logging.DrakkarLoggerProvider.CreateFactory(new LoggingConfig { Format = LogFormat.Console, Level = "DEBUG" },
                new Drakkar.Observability.Logging.LogContext(workerId, config.Kafka.ConsumerGroup, config.ClusterName))
            : NullLoggerFactory.Instance;
        return WorkerHost.StartAsync(handler, config, workerId,
            new WorkerParts { Executor = parts.Executor, Delivery = parts.Delivery, Loggers = loggers, ProbeHandler = probeHandler }, cancellationToken);
    }

    /// <summary>
    /// Produces <paramref name="count"/> records round-robin over the partitions; values are "m-{i}". With
    /// <paramref name="spacing"/> they trickle in one at a time (a stream), else they go as one burst.
    /// </summary>
    public static async Task ProduceAsync(string brokers, string topic, int partitions, int count, Func<int, string>? value = null, TimeSpan? spacing = null)
    {
        using var producer = new ProducerBuilder<string?, string>(new ProducerConfig { BootstrapServers = brokers, LingerMs = 5 }).Build();
        for (var i = 0; i < count; i++)
        {
            producer.Produce(new TopicPartition(topic, i % partitions), new Message<string?, string> { Key = $"k{i}", Value = value?.Invoke(i) ?? $"m-{i}" });
            if (i % 10_000 == 9_999) producer.Flush(TimeSpan.FromSeconds(30));
            if (spacing is { } pause) await Task.Delay(pause);
        }
        producer.Flush(TimeSpan.FromSeconds(30));
    }

    /// <summary>The group's committed offset per partition (-1 when none).</summary>
    public static long[] Committed(string brokers, string topic, string group, int partitions)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = brokers, GroupId = group }).Build();
        var committed = consumer.Committed(Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)), TimeSpan.FromSeconds(10));
        return [.. committed.OrderBy(c => c.Partition.Value).Select(c => c.Offset.Value < 0 ? -1L : c.Offset.Value)];
    }
}
