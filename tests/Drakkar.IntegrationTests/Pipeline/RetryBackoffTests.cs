using System.Collections.Concurrent;
using Drakkar.IntegrationTests.Faults;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>
/// docs/configuration.md, <c>retry_backoff_ms</c>: a retry the handler asks for (<c>OnDeliveryError</c> → Retry,
/// <c>OnError</c> → Retry) waits a capped exponential backoff with jitter — retry n waits at least half of
/// <c>retry_backoff_ms × 2^(n−1)</c> — instead of hammering the destination or the binary. The spacing is read from
/// what a real receiver and the hook saw; only lower bounds are asserted (no timing of the machine's speed).
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class RetryBackoffTests(KafkaBroker kafka)
{
    private const int BackoffMs = 200, Retries = 4;

    private sealed class RetryingWebhooks : DrakkarHandler
    {
        private readonly WebhookHandler _payloads = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            _payloads.Arrange(messages, pending);

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group) => _payloads.OnMessageComplete(group);

        public override ValueTask<DeliveryAction> OnDeliveryError(DeliveryError error) => Decide(DeliveryAction.Retry);
    }

    private sealed class FailingTask : DrakkarHandler
    {
        public ConcurrentQueue<(int Attempt, DateTimeOffset At)> Failures { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            Tasks([.. messages.Select(m => new ExecutorTask(TaskId.New("fail")) { Args = ["-c", "exit 3"], SourceOffsets = [m.Offset] })]);

        public override ValueTask<ErrorDecision> OnError(ExecutorTask task, ExecutorError error)
        {
            Failures.Enqueue((error.Attempt, DateTimeOffset.UtcNow));
            return Decide(ErrorDecision.Retry);
        }
    }

    [Fact]
    public async Task A_delivery_the_handler_retries_reaches_the_receiver_with_growing_gaps_of_at_least_half_the_doubling_backoff()
    {
        using var receiver = new HttpReceiver();
        receiver.RespondWith(500);
        var topic = kafka.CreateTopic("delivery-backoff");
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Executor.MaxRetries = Retries;
            c.Sinks.RetryBackoffMs = BackoffMs;
            c.Sinks.RetryBackoffMaxMs = 60_000;
            c.Sinks.Http["hook"] = new HttpSinkConfig { Url = receiver.Url, MaxRetries = 0, OnOutage = OutagePolicy.Dlq };
        });
        await using var worker = await TestWorker.StartAsync(new RetryingWebhooks(), config);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 1);

        // Retries exhausted, the payload falls through to the DLQ and the message commits.
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 1)[0] == 1,
            TimeSpan.FromSeconds(60), "the message committed after its retries");
        var arrivals = receiver.Requests.Select(r => r.ArrivedAt).Order().ToArray();
        Assert.Equal(1 + Retries, arrivals.Length);
        AssertBackoffGaps(arrivals);
        await worker.StopAsync();
    }

    [Fact]
    public async Task A_task_the_handler_retries_runs_again_with_growing_gaps_of_at_least_half_the_doubling_backoff()
    {
        var topic = kafka.CreateTopic("task-backoff");
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Executor.BinaryPath = "/bin/sh";
            c.Executor.MaxRetries = Retries;
            c.Executor.RetryBackoffMs = BackoffMs;
            c.Executor.RetryBackoffMaxMs = 60_000;
        });
        var handler = new FailingTask();
        await using var worker = await TestWorker.StartAsync(handler, config);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 1);

        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 1)[0] == 1,
            TimeSpan.FromSeconds(60), "the message committed after its retries");
        Assert.Equal(Enumerable.Range(1, 1 + Retries), handler.Failures.Select(f => f.Attempt));
        AssertBackoffGaps([.. handler.Failures.Select(f => f.At)]);
        await worker.StopAsync();
    }

    [Fact]
    public async Task A_shutdown_ends_the_backoff_waits_of_a_delivery_and_a_task_and_leaves_their_message_uncommitted()
    {
        using var receiver = new HttpReceiver();
        receiver.RespondWith(500);
        var topic = kafka.CreateTopic("backoff-shutdown", partitions: 2);
        // Ten minutes before any retry: only the shutdown can end the waits.
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Executor.BinaryPath = "/bin/sh";
            c.Executor.DrainTimeoutSeconds = 2;
            c.Executor.RetryBackoffMs = c.Executor.RetryBackoffMaxMs = 600_000;
            c.Sinks.RetryBackoffMs = c.Sinks.RetryBackoffMaxMs = 600_000;
            c.Sinks.Http["hook"] = new HttpSinkConfig { Url = receiver.Url, MaxRetries = 0, OnOutage = OutagePolicy.Dlq };
        });
        var handler = new WaitingOnBoth();
        using var logs = new LogCapture();
        var worker = await TestWorker.StartAsync(handler, config, loggers: logs);
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 2, 2);

        await Eventually.True(() => receiver.Requests.Count == 1 && handler.Failures.Count == 1, TimeSpan.FromSeconds(60),
            "the delivery and the task failed once each and wait for their retry");
        // Well under the ten minutes; the bound only tells "the wait was cut" from "the wait ran".
        await worker.StopAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await worker.DisposeAsync();

        // The sinks closed within the stop's bound: no delivery was left waiting out its backoff.
        Assert.Single(logs.Containing("Stopped"));
        Assert.Empty(logs.Containing("parts still closing"));
        Assert.Single(receiver.Requests);
        Assert.Single(handler.Failures);
        Assert.Equal([-1L, -1L], TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 2));
    }

    /// <summary>Partition 0's message fails its task, partition 1's fails its delivery; both ask for retries.</summary>
    private sealed class WaitingOnBoth : DrakkarHandler
    {
        private readonly WebhookHandler _payloads = new();

        public ConcurrentQueue<DateTimeOffset> Failures { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            messages[0].Partition == 0
                ? Tasks([.. messages.Select(m => new ExecutorTask(TaskId.New("fail")) { Args = ["-c", "exit 3"], SourceOffsets = [m.Offset] })])
                : _payloads.Arrange(messages, pending);

        public override ValueTask<ErrorDecision> OnError(ExecutorTask task, ExecutorError error)
        {
            Failures.Enqueue(DateTimeOffset.UtcNow);
            return Decide(ErrorDecision.Retry);
        }

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group) =>
            group.Message.Partition == 1 ? _payloads.OnMessageComplete(group) : Collect(null);

        public override ValueTask<DeliveryAction> OnDeliveryError(DeliveryError error) => Decide(DeliveryAction.Retry);
    }

    /// <summary>The gap before retry n is at least half its nominal wait, <c>BackoffMs × 2^(n−1)</c>: 100, 200, 400, 800 ms.</summary>
    private static void AssertBackoffGaps(DateTimeOffset[] attempts)
    {
        var gaps = attempts.Zip(attempts.Skip(1), (a, b) => (b - a).TotalMilliseconds).ToArray();
        var described = string.Join(", ", gaps.Select(g => $"{g:0} ms"));
        for (var retry = 1; retry <= gaps.Length; retry++)
        {
            var least = BackoffMs * Math.Pow(2, retry - 1) / 2;
            // Clocks read on two threads may disagree by a tick; a millisecond of slack covers it.
            Assert.True(gaps[retry - 1] >= least - 1, $"retry {retry} came {gaps[retry - 1]:0} ms after the previous attempt, less than {least} ms (gaps: {described})");
        }
    }
}
