using System.Collections.Concurrent;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>
/// E9 through a whole worker: one handler, unchanged, run with <c>executor.mode: spawn</c> and <c>persistent</c>
/// against the C# reference child. Both modes give the same results, the same errors to <c>OnError</c>, the same
/// retries and replacement tasks, and commit every message; only the number of processes differs.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class PersistentExecutorPipelineTests(KafkaBroker kafka) : IDisposable
{
    private const int Messages = 30;
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-persistent-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// One task per message: "crash-*" messages kill their process on the first attempt (OnError retries them),
    /// "fail-*" messages exit 5 (OnError replaces them with an echo), the rest echo their value.
    /// </summary>
    private sealed class ModeBlindHandler(string dir) : DrakkarHandler
    {
        public ConcurrentDictionary<string, string> Outputs { get; } = new();
        public ConcurrentQueue<ExecutorError> Errors { get; } = new();
        public ConcurrentQueue<int> Pids { get; } = new();
        public ConcurrentDictionary<(int, long), int> Settled { get; } = new();

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m =>
            {
                var value = System.Text.Encoding.UTF8.GetString(m.Value);
                return new ExecutorTask(TaskId.New("mode"))
                {
                    Args = value.StartsWith("crash", StringComparison.Ordinal) ? ["crash-once", Path.Combine(dir, value), value]
                        : value.StartsWith("fail", StringComparison.Ordinal) ? ["fail", "5"]
                        : ["echo", value],
                    SourceOffsets = [m.Offset],
                    Metadata = { ["value"] = value },
                };
            })]);

        public override ValueTask<ErrorDecision> OnError(ExecutorTask task, ExecutorError error)
        {
            Errors.Enqueue(error);
            return ValueTask.FromResult(error.ExitCode == 5
                ? ErrorDecision.Replace([new ExecutorTask(TaskId.New("replacement"))
                {
                    Args = ["echo", "replaced", task.Metadata["value"]],
                    SourceOffsets = task.SourceOffsets,
                    Metadata = { ["value"] = task.Metadata["value"] },
                }])
                : ErrorDecision.Retry);
        }

        public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
        {
            Outputs[result.Task.Metadata["value"]] = result.Stdout;
            Pids.Enqueue(result.Pid ?? -1);
            return ValueTask.FromResult<CollectResult?>(null);
        }

        public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group)
        {
            Settled.AddOrUpdate((group.Message.Partition, group.Message.Offset), 1, (_, n) => n + 1);
            return ValueTask.FromResult<CollectResult?>(null);
        }
    }

    private static string Value(int i) => (i % 10) switch { 3 => $"crash-{i}", 7 => $"fail-{i}", _ => $"m-{i}" };

    [Theory]
    [InlineData(ExecutorMode.Spawn)]
    [InlineData(ExecutorMode.Persistent)]
    public async Task One_handler_gets_the_same_results_retries_and_replacements_in_either_mode(ExecutorMode mode)
    {
        var topic = kafka.CreateTopic($"persistent-{mode}".ToLowerInvariant(), partitions: 2);
        var child = SampleBinary.PathOf("tests/Drakkar.PersistentChild", "Drakkar.PersistentChild", "", aot: false)!;
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Executor.BinaryPath = child;
            c.Executor.Mode = mode;
            c.Executor.RestartBackoffMs = 10;
        });
        var handler = new ModeBlindHandler(_dir);
        double started, failed, alive;
        await using (var worker = await TestWorker.StartAsync(handler, config))
        {
            await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 2, Messages, Value);
            await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, $"{topic}-g", 2).Sum() == Messages,
                TimeSpan.FromSeconds(90), $"all {Messages} messages committed");
            started = worker.Metrics.ExecutorProcessEvents.Value("started");
            failed = worker.Metrics.ExecutorProcessEvents.Value("failed");
            alive = worker.Metrics.ExecutorProcesses.Current;
        }

        var expected = Enumerable.Range(0, Messages).ToDictionary(Value, i => Value(i) switch
        {
            var v when v.StartsWith("fail", StringComparison.Ordinal) => $"replaced {v}\n",
            var v => $"{v}\n",
        });
        Assert.Equal(expected.OrderBy(e => e.Key), handler.Outputs.OrderBy(e => e.Key));
        Assert.Equal(Messages, handler.Settled.Count);
        Assert.All(handler.Settled.Values, n => Assert.Equal(1, n));

        var errors = handler.Errors.ToArray();
        Assert.Equal(6, errors.Length);
        Assert.All(errors.Where(e => e.ExitCode == 3), e => Assert.Equal((ExecutorFailure.NonZeroExit, 1), (e.Failure, e.Attempt)));
        Assert.Equal(3, errors.Count(e => e.ExitCode == 3));
        Assert.Equal(3, errors.Count(e => e.ExitCode == 5 && e.Stderr == "failing with 5\n"));

        // Spawn mode starts a process per run; persistent mode only replaces the ones that crashed.
        var processes = handler.Pids.Distinct().Count();
        if (mode == ExecutorMode.Spawn)
        {
            Assert.Equal(Messages, processes);
            Assert.Equal((0.0, 0.0, 0.0), (started, failed, alive));
        }
        else
        {
            Assert.InRange(processes, 1, config.Executor.MaxExecutors + 3);
            // drakkar_executor_process_events_total and drakkar_executor_processes: the three crashes each cost a process.
            Assert.Equal(3.0, failed);
            Assert.Equal(started - failed, alive);
        }
    }

    /// <summary>
    /// A stop that runs out of drain_timeout_seconds while a persistent process waits out its 5 s exit grace (it ignores
    /// end-of-file) left that process running after the worker had stopped.
    /// </summary>
    [Fact]
    public async Task A_stop_out_of_time_leaves_no_persistent_process_behind()
    {
        var topic = kafka.CreateTopic("persistent-stop-bound");
        var child = SampleBinary.PathOf("tests/Drakkar.PersistentChild", "Drakkar.PersistentChild", "", aot: false)!;
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Executor.BinaryPath = child;
            c.Executor.Mode = ExecutorMode.Persistent;
            c.Executor.ProcessArgs = ["--ignore-eof"];
            c.Executor.DrainTimeoutSeconds = 1;
        });
        var handler = new ModeBlindHandler(_dir);
        var worker = await TestWorker.StartAsync(handler, config);
        await using (worker)
        {
            await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 3);
            await Eventually.True(() => handler.Settled.Count == 3, TimeSpan.FromSeconds(60), "three messages done");
            var pids = handler.Pids.Distinct().ToArray();
            Assert.All(pids, pid => Assert.True(Directory.Exists($"/proc/{pid}"), $"process {pid} alive before the stop"));

            await worker.StopAsync();

            Assert.All(pids, pid => Assert.False(Directory.Exists($"/proc/{pid}"), $"process {pid} outlived the worker's stop"));
        }
    }
}
