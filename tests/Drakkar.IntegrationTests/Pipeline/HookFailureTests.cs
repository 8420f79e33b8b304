using System.Collections.Concurrent;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>SPEC O5 through a whole worker: a throwing <c>OnMessageComplete</c> or <c>OnWindowComplete</c> is logged, and the messages still complete and commit.</summary>
[Collection(KafkaCollection.Name)]
public sealed class HookFailureTests(KafkaBroker kafka)
{
    /// <summary><c>OnMessageComplete</c> throws for offset 2; <c>OnWindowComplete</c> throws for the window holding offset 4.</summary>
    private sealed class ThrowingCompletionHandler : DrakkarHandler
    {
        public ConcurrentDictionary<long, int> MessageCompletions { get; } = new();
        public ConcurrentQueue<long[]> WindowCompletions { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("hook"))
            {
                Precomputed = new PrecomputedResult(),
                SourceOffsets = [m.Offset],
            })]);

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group)
        {
            MessageCompletions.AddOrUpdate(group.Message.Offset, 1, (_, n) => n + 1);
            return group.Message.Offset == 2 ? throw new InvalidOperationException("message hook broke") : ValueTask.FromResult<CollectResult?>(null);
        }

        public override ValueTask<CollectResult?> OnWindowComplete(IReadOnlyList<ExecutorResult> results, IReadOnlyList<SourceMessage> messages)
        {
            WindowCompletions.Enqueue([.. messages.Select(m => m.Offset)]);
            return messages.Any(m => m.Offset == 4) ? throw new InvalidOperationException("window hook broke") : ValueTask.FromResult<CollectResult?>(null);
        }
    }

    [Fact]
    public async Task A_throwing_OnMessageComplete_or_OnWindowComplete_is_logged_and_the_messages_still_complete_and_commit()
    {
        const int total = 8;
        var topic = kafka.CreateTopic("hook-failures");
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, total);
        var handler = new ThrowingCompletionHandler();
        var logs = new LogCapture();

        await using var worker = await TestWorker.StartAsync(handler, TestWorker.Config(kafka.BootstrapServers, topic, group, c => c.Executor.WindowSize = 2),
            loggers: logs);
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, 1)[0] == total, TimeSpan.FromSeconds(30),
            "every offset committed, past both failing hooks");

        Assert.Equal(Enumerable.Range(0, total).Select(o => (long)o), handler.MessageCompletions.Keys.Order());
        Assert.All(handler.MessageCompletions.Values, n => Assert.Equal(1, n));
        Assert.Equal(Enumerable.Range(0, total).Select(o => (long)o), handler.WindowCompletions.SelectMany(w => w).Order());
        Assert.Single(logs.Containing("Hook on_message_complete failed"));
        Assert.Single(logs.Containing("Hook on_window_complete failed"));
        await worker.StopAsync();
    }

    /// <summary>Every message's task writes to stderr and exits 3; <c>OnError</c> asks for a retry each time.</summary>
    private sealed class AlwaysFailingHandler : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("doomed"))
            {
                Args = ["-c", $"echo 'input {m.Offset} is malformed at line 7' >&2; exit 3"],
                SourceOffsets = [m.Offset],
            })]);

        public override ValueTask<ErrorDecision> OnError(ExecutorTask task, ExecutorError error) => Decide(ErrorDecision.Retry);
    }

    [Fact]
    public async Task A_task_that_fails_for_good_is_a_warning_with_its_attempts_and_the_end_of_its_stderr()
    {
        var topic = kafka.CreateTopic("failed-for-good");
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 1);
        var logs = new LogCapture();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c =>
        {
            c.Executor.BinaryPath = "/bin/sh";
            c.Executor.MaxRetries = 2;
            c.Executor.RetryBackoffMs = 0;
        });

        await using var worker = await TestWorker.StartAsync(new AlwaysFailingHandler(), config, loggers: logs);
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, 1)[0] == 1, TimeSpan.FromSeconds(30),
            "the message committed after its task's final failure");

        // Each attempt is information (it may be retried); the final failure is one warning a WARNING-level log keeps.
        Assert.Equal(3, logs.Containing("exited with code 3 on attempt").Length);
        var final = Assert.Single(logs.Containing("failed for good"));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, final.Level);
        Assert.Contains($"[0] failed for good after 3 attempt(s): NonZeroExit, exit code 3; stderr: input 0 is malformed at line 7", final.Message, StringComparison.Ordinal);
        await worker.StopAsync();
    }
}
