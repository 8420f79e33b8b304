using System.Collections.Concurrent;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>How the partitions of one worker share its intake while backpressure pauses and resumes them.</summary>
[Collection(KafkaCollection.Name)]
public sealed class PartitionFairnessTests(KafkaBroker kafka)
{
    /// <summary>
    /// A pause that outlasts the soft limit pauses every partition in librdkafka, which drops what it had prefetched;
    /// on resume the partitions fetch again, and the one whose records came back first filled the load before any
    /// other was reached. With a long backlog on one partition, a second partition of the same worker got nothing
    /// until that backlog was done (a newcomer measured 46 s). A partition that took nothing in the last cycle is
    /// now resumed first.
    /// </summary>
    [Fact]
    public async Task A_partition_with_a_short_backlog_is_not_starved_by_a_partition_with_a_long_one()
    {
        var topic = kafka.CreateTopic("fairness", partitions: 2);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, LingerMs = 5 }).Build())
        {
            for (var i = 0; i < 3_000; i++) producer.Produce(new TopicPartition(topic, 0), new Message<Null, string> { Value = $"a-{i}" });
            for (var i = 0; i < 200; i++) producer.Produce(new TopicPartition(topic, 1), new Message<Null, string> { Value = $"b-{i}" });
            producer.Flush(TimeSpan.FromSeconds(30));
        }

        var handler = new SlowTaskHandler();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Executor.MaxExecutors = 2;
            c.Executor.WindowSize = 8;
            c.Executor.BackpressureHighMultiplier = 16; // pause at 32 tasks
            c.Executor.BackpressureLowMultiplier = 4;   // resume at 8: each pause lasts past the soft limit
        });
        await using var worker = await TestWorker.StartAsync(handler, config);

        await Eventually.True(() => handler.Finished.Count >= 300, TimeSpan.FromSeconds(90), "300 tasks finished");
        var first = handler.Finished.Take(300).ToList();
        var pauses = worker.Load!.Pauses;
        await worker.StopAsync();

        Assert.True(pauses >= 3, $"backpressure paused {pauses} time(s); the test needs pause cycles");
        var ofPartition1 = first.Count(p => p == 1);
        Assert.True(ofPartition1 >= 50, $"of the first 300 tasks, {ofPartition1} were partition 1's (its 200 messages waited behind partition 0's 3,000)");
    }

    private sealed class SlowTaskHandler : DrakkarHandler
    {
        private readonly ConcurrentDictionary<string, int> _partitionOf = new();

        public ConcurrentQueue<int> Finished { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            Tasks([.. messages.Select(m =>
            {
                var task = new ExecutorTask(TaskId.New("slow")) { BinaryPath = "/bin/sleep", Args = ["0.03"], SourceOffsets = [m.Offset] };
                _partitionOf[task.TaskId] = m.Partition;
                return task;
            })]);

        public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
        {
            Finished.Enqueue(_partitionOf[result.Task.TaskId]);
            return Collect(null);
        }
    }
}
