using System.Collections.Concurrent;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>An input for the typed-state worker: which word to echo, and whether its first run fails.</summary>
[Payload]
public sealed partial record EchoJob(string Id, string Word, bool FailFirst);

/// <summary>
/// docs/handlers.md, "Typed state between hooks": the object a task carries from <c>Arrange</c> reaches
/// <c>OnError</c> and <c>OnTaskComplete</c> as the same typed object (a replacement task inherits it), and a typed
/// handler's <c>OnMessageComplete</c> gets a <see cref="MessageGroup{T}"/> whose message is decoded — through a real
/// worker, real processes and the embedded broker.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class TypedStateTests(KafkaBroker kafka)
{
    /// <summary>What the hooks need about a job, never given to the process.</summary>
    private sealed record EchoState(EchoJob Job, long Offset);

    private sealed class EchoHandler : DrakkarHandler<EchoJob>
    {
        public ConcurrentDictionary<string, (EchoState State, string Stdout, string? Parent)> Completed { get; } = new();
        public ConcurrentDictionary<string, EchoState> Failed { get; } = new();
        public ConcurrentDictionary<long, (string? Id, int Tasks, bool AllSucceeded)> Groups { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<EchoJob>> messages, PendingContext pending) =>
            Tasks([.. messages.Where(m => m.Payload is not null).Select(m => new ExecutorTask(TaskId.New("echo"))
            {
                Args = ["-c", m.Payload!.FailFirst ? "exit 1" : "echo \"$0\"", m.Payload.Word],
                SourceOffsets = [m.Offset],
                State = new EchoState(m.Payload, m.Offset),
            })]);

        public override ValueTask<ErrorDecision> OnError(ExecutorTask task, ExecutorError error)
        {
            var state = task.StateAs<EchoState>();
            Failed[state.Job.Id] = state;
            // The replacement sets no state of its own: it inherits the failed task's.
            return Decide(ErrorDecision.Replace([new ExecutorTask(TaskId.New("echo-again"))
            {
                Args = ["-c", "echo \"$0\"", state.Job.Word.ToUpperInvariant()],
                SourceOffsets = task.SourceOffsets,
            }]));
        }

        public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
        {
            var state = result.Task.StateAs<EchoState>();
            Completed[state.Job.Id] = (state, result.Stdout.Trim(), result.Task.ParentTaskId);
            return Collect(null);
        }

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup<EchoJob> group)
        {
            Groups[group.Message.Offset] = (group.Message.Payload?.Id, group.Total, group.AllSucceeded);
            return Collect(null);
        }
    }

    [Fact]
    public async Task The_state_set_in_arrange_reaches_on_error_and_on_task_complete_typed_and_a_replacement_inherits_it()
    {
        var topic = kafka.CreateTopic("typed-state");
        var jobs = new[] { new EchoJob("a", "alpha", false), new EchoJob("b", "bravo", true), new EchoJob("c", "charlie", false) };
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, jobs.Length,
            i => $"{{\"id\":\"{jobs[i].Id}\",\"word\":\"{jobs[i].Word}\",\"fail_first\":{(jobs[i].FailFirst ? "true" : "false")}}}");
        var handler = new EchoHandler();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c => c.Executor.BinaryPath = "/bin/sh");
        await using var worker = await TestWorker.StartAsync(handler, config);

        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, config.Kafka.ConsumerGroup, 1)[0] == jobs.Length,
            TimeSpan.FromSeconds(60), "every job committed");

        // Each task's hooks saw the very job decoded from its own message, at its own offset.
        for (var offset = 0; offset < jobs.Length; offset++)
        {
            var (state, stdout, parent) = handler.Completed[jobs[offset].Id];
            Assert.Equal(new EchoState(jobs[offset], offset), state);
            Assert.Equal(jobs[offset].FailFirst ? jobs[offset].Word.ToUpperInvariant() : jobs[offset].Word, stdout);
            Assert.Equal(jobs[offset].FailFirst, parent is not null);
        }
        Assert.Equal(new EchoState(jobs[1], 1), Assert.Single(handler.Failed).Value);

        // The typed group: its message is decoded, and the replaced task counts among the message's tasks.
        Assert.Equal([(0L, ("a", 1, true)), (1L, ("b", 2, true)), (2L, ("c", 1, true))],
            handler.Groups.OrderBy(g => g.Key).Select(g => (g.Key, (g.Value.Id, g.Value.Tasks, g.Value.AllSucceeded))));
        await worker.StopAsync();
    }
}
