using Confluent.Kafka;
using Drakkar.Execution;
using Drakkar.Hosting;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>
/// SPEC E1 and P2 through a whole worker: tasks waiting for the one executor slot start in <c>TaskPriority</c> order,
/// across partitions, FIFO on ties; by default the lowest source offset first; a throwing hook puts its task last.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class TaskPriorityTests(KafkaBroker kafka) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-priority-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// The message "block" holds the slot until the test creates <c>release</c>; every other message runs a process
    /// that appends <c>p{partition}@{offset}</c> to <c>order.log</c> as it starts.
    /// </summary>
    private class OrderHandler(string dir) : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("order"))
            {
                BinaryPath = "/bin/sh",
                Args = m.Value is [(byte)'b', ..]
                    ? ["-c", $"touch {dir}/blocking; while [ ! -f {dir}/release ]; do sleep 0.02; done"]
                    : ["-c", $"echo p{m.Partition}@{m.Offset} >> {dir}/order.log"],
                SourceOffsets = [m.Offset],
                Metadata = { ["id"] = $"p{m.Partition}@{m.Offset}" },
            })]);
    }

    /// <summary>Highest offset first; the task for p0@2 makes the hook throw.</summary>
    private sealed class ReversedHandler(string dir) : OrderHandler(dir)
    {
        public override long TaskPriority(ExecutorTask task) => task.Metadata["id"] == "p0@2"
            ? throw new InvalidOperationException("no priority for this one")
            : -task.SourceOffsets[0];
    }

    /// <summary>
    /// Blocks the single slot with p0@0, queues p0@1–4 and then p1@0–3 behind it, releases the slot and returns the
    /// order in which the queued tasks started.
    /// </summary>
    private async Task<string[]> StartOrderAsync(DrakkarHandler handler, Action<WorkerHost>? stopped = null)
    {
        var topic = kafka.CreateTopic("priority", partitions: 2);
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).Build();
        void Produce(int partition, int count, string value)
        {
            for (var i = 0; i < count; i++) producer.Produce(new TopicPartition(topic, partition), new Message<Null, string> { Value = value });
            producer.Flush(TimeSpan.FromSeconds(10));
        }

        ExecutorPool? pool = null;
        var defaults = DrakkarApp.DefaultParts();
        var parts = new WorkerParts
        {
            Executor = (config, metrics, loggers) => pool = (ExecutorPool)defaults.Executor(config, metrics, loggers),
            Delivery = defaults.Delivery,
            Loggers = NullLoggerFactory.Instance,
        };
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c => c.Executor.MaxExecutors = 1);
        await using var worker = await WorkerHost.StartAsync(handler, config, "priority", parts, CancellationToken.None);

        Produce(0, 1, "block");
        await Eventually.True(() => File.Exists(Path.Combine(_dir, "blocking")), TimeSpan.FromSeconds(30), "the blocker holding the slot");
        // Partition 0's tasks queue first, then partition 1's, so arrival order differs from priority order.
        Produce(0, 4, "run");
        await Eventually.True(() => pool!.WaitingCount == 4, TimeSpan.FromSeconds(30), "p0@1-4 waiting for the slot");
        Produce(1, 4, "run");
        await Eventually.True(() => pool!.WaitingCount == 8, TimeSpan.FromSeconds(30), "p1@0-3 waiting too");

        await File.WriteAllTextAsync(Path.Combine(_dir, "release"), "");
        var order = Path.Combine(_dir, "order.log");
        await Eventually.True(() => File.Exists(order) && File.ReadAllLines(order).Length == 8, TimeSpan.FromSeconds(30), "every queued task run");
        await worker.StopAsync();
        stopped?.Invoke(worker);
        return File.ReadAllLines(order);
    }

    [Fact]
    public async Task By_default_the_lowest_source_offset_starts_first_across_partitions_and_ties_start_in_arrival_order()
    {
        var order = await StartOrderAsync(new OrderHandler(_dir));

        Assert.Equal(["p1@0", "p0@1", "p1@1", "p0@2", "p1@2", "p0@3", "p1@3", "p0@4"], order);
    }

    [Fact]
    public async Task An_overridden_TaskPriority_decides_the_order_and_a_task_whose_hook_throws_starts_last()
    {
        double priorityErrors = -1;
        var order = await StartOrderAsync(new ReversedHandler(_dir), worker => priorityErrors = worker.Metrics.PriorityErrors.Value());

        Assert.Equal(["p0@4", "p0@3", "p1@3", "p1@2", "p0@1", "p1@1", "p1@0", "p0@2"], order);
        // Counted as Python Drakkar counts it, once per throwing call.
        Assert.True(priorityErrors >= 1, $"drakkar_executor_priority_fn_errors_total = {priorityErrors}");
    }
}
