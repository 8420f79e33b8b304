using System.Diagnostics;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>SPEC O3 through a whole worker: periodic commits are spaced by <c>kafka.commit_interval_ms</c>, and one the coordinator refuses is made again on the next tick.</summary>
[Collection(KafkaCollection.Name)]
public sealed class OffsetCommitTests(KafkaBroker kafka)
{
    private const short OffsetCommitApi = 8;

    [Fact]
    public async Task Periodic_commits_are_at_least_commit_interval_ms_apart_and_keep_coming_while_work_completes()
    {
        const int total = 60;
        var topic = kafka.CreateTopic("commit-interval");
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, total);
        // About 20 messages complete every second, so the watermark moves between any two commits.
        var handler = new RecordingHandler(realProcesses: false) { BeforeArrange = () => Task.Delay(50) };
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c =>
        {
            c.Kafka.CommitIntervalMs = 400;
            c.Executor.WindowSize = 1;
        });
        var watcher = new CommitWatcher(kafka.BootstrapServers, topic, group, 1, (p, o) => handler.Settled.ContainsKey((p, o)), "settled");

        await using var worker = await TestWorker.StartAsync(handler, config);
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, 1)[0] == total, TimeSpan.FromSeconds(60), "every offset committed");
        await watcher.StopAsync();
        await worker.StopAsync();

        Assert.Empty(watcher.Violations);
        var seen = watcher.Changes.ToArray();
        Assert.True(seen.Length >= 4, $"only {seen.Length} commits while about 3 s of work completed");
        // Each commit was made between its Since and At (about a millisecond apart, more when the machine is busy), so
        // two commits were at most b.At - a.Since and at least b.Since - a.At apart. Neither bound may contradict the
        // spacing: at least commit_interval_ms (0.35 s leaves room for timer jitter), and a commit on every tick.
        var gaps = seen.Zip(seen.Skip(1), (a, b) => (Most: Stopwatch.GetElapsedTime(a.Since, b.At).TotalSeconds,
            Least: Stopwatch.GetElapsedTime(a.At, b.Since).TotalSeconds)).ToArray();
        Assert.All(gaps, gap =>
        {
            Assert.True(gap.Most >= 0.35, $"two commits at most {gap.Most:0.000} s apart");
            Assert.True(gap.Least <= 0.4 + 1.5, $"two commits at least {gap.Least:0.000} s apart");
        });
    }

    [Fact]
    public async Task A_periodic_commit_the_coordinator_refuses_is_made_again_on_the_next_tick()
    {
        const int total = 20;
        var topic = kafka.CreateTopic("commit-refused");
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, total);
        var arranging = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new RecordingHandler(realProcesses: false)
        {
            BeforeArrange = () =>
            {
                arranging.TrySetResult();
                return release.Task;
            },
        };
        var logs = new LogCapture();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c =>
        {
            c.Kafka.CommitIntervalMs = 300;
            c.Executor.WindowSize = 100;
        });

        await using var worker = await TestWorker.StartAsync(handler, config, loggers: logs);
        await arranging.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // Nothing is done yet, so no commit was made; the next three the worker makes are refused.
        kafka.Broker.PushRequestErrors(OffsetCommitApi, [.. Enumerable.Repeat(Confluent.Kafka.ErrorCode.OffsetMetadataTooLarge, 3)]);
        try
        {
            release.SetResult();
            await Eventually.True(() => handler.Settled.Count == total, TimeSpan.FromSeconds(30), "every message settled");
            // No new work arrives: only a retry of the refused commits can still move the committed offset.
            await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, 1)[0] == total, TimeSpan.FromSeconds(15),
                "the refused commit made again while the worker runs");
        }
        finally
        {
            kafka.Broker.ClearRequestErrors(OffsetCommitApi);
        }

        Assert.Equal(3, logs.Containing("Offset commit failed").Length);
        await worker.StopAsync();
    }
}
