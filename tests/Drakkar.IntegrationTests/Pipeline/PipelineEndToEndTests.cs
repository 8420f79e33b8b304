using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

[Collection(KafkaCollection.Name)]
public sealed class PipelineEndToEndTests(KafkaBroker kafka)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Every_message_runs_a_real_process_and_the_group_commits_the_end_of_each_partition()
    {
        var topic = kafka.CreateTopic("e2e", partitions: 2);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 2, 200);
        var handler = new RecordingHandler(realProcesses: true);
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c => c.Executor.WindowSize = 16);
        await using var worker = await TestWorker.StartAsync(handler, config);

        await Eventually.Get(() => string.Join(",", TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 2)) + $" settled={handler.Settled.Count}",
            s => s!.StartsWith("100,100 ", StringComparison.Ordinal), Patience, "both partitions committed to their end");
        Assert.Equal(200, handler.Settled.Count);
        Assert.All(handler.Settled.Values, n => Assert.Equal(1, n));
        Assert.Equal("1:99\n", handler.Outputs[(1, 99)]);
        await worker.StopAsync();
    }

    [Fact]
    public async Task Backpressure_pauses_at_the_high_mark_resumes_at_the_low_mark_and_keeps_50000_queued_messages_bounded()
    {
        const int total = 50_000;
        var topic = kafka.CreateTopic("backpressure", partitions: 4);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 4, total);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new RecordingHandler(realProcesses: false) { BeforeArrange = () => gate.Task };
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Executor.MaxExecutors = 2;
            c.Executor.BackpressureHighMultiplier = 32; // pause at 64
            c.Executor.BackpressureLowMultiplier = 4;   // resume at 8
            c.Executor.WindowSize = 16;
        });
        await using var worker = await TestWorker.StartAsync(handler, config);
        var load = worker.Load!;

        // Held at Arrange, the worker queues until the high mark and then stops fetching.
        await Eventually.True(() => load.Paused, Patience, "consumption paused");
        var peak = 0L;
        using var sampler = new CancellationTokenSource();
        var sampling = Task.Run(async () =>
        {
            while (!sampler.IsCancellationRequested)
            {
                peak = Math.Max(peak, load.Current);
                await Task.Delay(1);
            }
        });
        await Task.Delay(300); // paused: the load must not grow while we watch
        Assert.True(load.Current == load.High, $"load {load.Current} while paused (high {load.High}), pauses {load.Pauses}, resumes {load.Resumes}");
        Assert.Equal(0, worker.Metrics.BackpressureActive.Value() == 1 ? 0 : 1);

        gate.SetResult();
        // Released, the worker works through the lag in pause/resume cycles between the two marks.
        await Eventually.True(() => load.Pauses >= 3 && load.Resumes >= 3, TimeSpan.FromSeconds(60), "three pause/resume cycles");
        await worker.StopAsync();
        await sampler.CancelAsync();
        await sampling;

        var committed = TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 4);
        Assert.True(committed.Sum() > 0, "some progress was committed");
        for (var p = 0; p < 4; p++)
            for (long o = 0; o < committed[p]; o++)
                Assert.True(handler.Settled.ContainsKey((p, o)), $"{p}@{o} committed but never settled");
        Assert.True(handler.Settled.Count < total, "the lag was still queued in Kafka, not in the worker");
        // What the worker held in memory never exceeded the high mark: the poll thread takes a record only below it,
        // and a window's messages leave the load in the same step as its tasks join it (no dip to take records into).
        Assert.True(peak >= 1 && peak <= load.High, $"peak load {peak} (high {load.High}), pauses {load.Pauses}");
    }

    [Fact]
    public async Task Two_workers_split_the_partitions_and_stopping_one_hands_over_without_loss_or_unprocessed_commits()
    {
        const int partitions = 4, total = 4_000;
        var topic = kafka.CreateTopic("handover", partitions);
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, partitions, total);
        // Worker A is slow (about 100 messages a second per partition) so that work is left when B joins: a
        // cooperative rebalance on the embedded broker takes several seconds, and a fast A would finish first.
        var handlerA = new RecordingHandler(realProcesses: false) { BeforeArrange = () => Task.Delay(100) };
        var handlerB = new RecordingHandler(realProcesses: false) { BeforeArrange = () => Task.Delay(2) };
        bool IsSettled((int Partition, long Offset) key) => handlerA.Settled.ContainsKey(key) || handlerB.Settled.ContainsKey(key);

        // Watch commits while the group rebalances: an offset may be committed only once everything below it settled.
        var watcher = new CommitWatcher(kafka.BootstrapServers, topic, group, partitions, (p, o) => IsSettled((p, o)), "settled");

        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c => c.Executor.WindowSize = 10);
        var workerA = await TestWorker.StartAsync(handlerA, config, "worker-a");
        await Eventually.True(() => workerA.AssignedPartitions.Count == partitions && handlerA.Settled.Count > 200, Patience, "worker A owns everything and is busy");
        await using var workerB = await TestWorker.StartAsync(handlerB, TestWorker.Config(kafka.BootstrapServers, topic, group, c => c.Executor.WindowSize = 10), "worker-b");
        await Eventually.True(() => workerB.AssignedPartitions.Count > 0 && workerA.AssignedPartitions.Count < partitions, Patience, "the partitions are split");
        var split = (workerA.AssignedPartitions.Count, workerB.AssignedPartitions.Count);
        await Eventually.True(() => handlerB.Settled.Count > 50, Patience, "worker B is busy");

        await workerA.StopAsync();
        await Eventually.True(() => workerB.AssignedPartitions.Count == partitions, TimeSpan.FromSeconds(120), "worker B took over every partition");
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, partitions).Sum() == total, TimeSpan.FromSeconds(90),
            "the group committed every message");
        await watcher.StopAsync();

        Assert.Equal(partitions, split.Item1 + split.Item2);
        Assert.Empty(watcher.Violations);
        var all = Enumerable.Range(0, total).Select(i => (i % partitions, (long)(i / partitions)));
        Assert.All(all, key => Assert.True(IsSettled(key), $"message {key} was never processed"));
        await workerB.StopAsync();
    }

    [Fact]
    public async Task A_final_commit_refused_because_of_a_rebalance_is_made_again_so_the_next_owner_redoes_nothing()
    {
        const int total = 200;
        var topic = kafka.CreateTopic("final-commit", partitions: 2);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 2, total);
        var handler = new RecordingHandler(realProcesses: false);
        // No periodic commit within the test: the final commit at stop is the only one.
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c => c.Kafka.CommitIntervalMs = 600_000);
        var worker = await TestWorker.StartAsync(handler, config);
        await Eventually.True(() => handler.Settled.Count == total, Patience, "every message processed");

        // The coordinator refuses the next two commits as a rebalance would (OffsetCommit is Kafka API key 8).
        kafka.Broker.PushRequestErrors(8, Confluent.Kafka.ErrorCode.RebalanceInProgress, Confluent.Kafka.ErrorCode.RebalanceInProgress);
        try
        {
            await worker.StopAsync();
        }
        finally
        {
            kafka.Broker.ClearRequestErrors(8);
        }

        Assert.Equal([total / 2L, total / 2L], TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 2));
    }
}
