using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Hosting;

/// <summary>SPEC P2, P3 and O8 through a whole worker: what <c>OnStartup</c> returns is used, a stop cancels periodic methods before it drains, and a worker disposed without a stop still leaves its group.</summary>
[Collection(KafkaCollection.Name)]
public sealed partial class WorkerLifecycleTests(KafkaBroker kafka)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>Returns a configuration of its own (a new object) that points the worker at another topic and group.</summary>
    private sealed class RedirectingHandler(DrakkarConfig replacement) : DrakkarHandler
    {
        public int Processed;

        public override ValueTask<DrakkarConfig> OnStartup(DrakkarConfig config) => ValueTask.FromResult(replacement);

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
        {
            Interlocked.Add(ref Processed, messages.Count);
            return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
        }
    }

    [Fact]
    public async Task The_configuration_OnStartup_returns_is_the_one_the_worker_runs_on()
    {
        var topic = kafka.CreateTopic("startup-config");
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 5);
        var file = TestWorker.Config(kafka.BootstrapServers, "a-topic-nobody-created", "a-group-nobody-uses");
        var replacement = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g");
        var handler = new RedirectingHandler(replacement);

        await using var worker = await TestWorker.StartAsync(handler, file);
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, $"{topic}-g", 1)[0] == 5, Patience,
            "the topic OnStartup named consumed and committed by the group it named");

        Assert.Same(replacement, worker.Config);
        Assert.Equal(5, handler.Processed);
        await worker.StopAsync();
    }

    /// <summary>
    /// A periodic method that runs until it is cancelled, and one task whose <c>OnTaskComplete</c> waits for the test:
    /// work in flight that the drain must wait for.
    /// </summary>
    private sealed partial class PeriodicHandler : DrakkarHandler
    {
        public TaskCompletionSource PeriodicRunning { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource PeriodicCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource TaskInFlight { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource ReleaseTask { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        [Periodic(0.05)]
        private async ValueTask Watch(CancellationToken cancellationToken)
        {
            PeriodicRunning.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                PeriodicCancelled.TrySetResult();
                throw;
            }
        }

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("held"))
            {
                Precomputed = new PrecomputedResult(),
                SourceOffsets = [m.Offset],
            })]);

        public override async ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
        {
            TaskInFlight.TrySetResult();
            await ReleaseTask.Task;
            return null;
        }
    }

    [Fact]
    public async Task Stopping_cancels_periodic_methods_before_the_drain_and_then_finishes_the_work_in_flight()
    {
        var topic = kafka.CreateTopic("stop-periodic");
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 1);
        var handler = new PeriodicHandler();
        var worker = await TestWorker.StartAsync(handler, TestWorker.Config(kafka.BootstrapServers, topic, group));
        await handler.PeriodicRunning.Task.WaitAsync(Patience);
        await handler.TaskInFlight.Task.WaitAsync(Patience);

        var stopping = worker.StopAsync();
        // The periodic method is cancelled while the drain still waits for the task in flight.
        await handler.PeriodicCancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(stopping.IsCompleted);
        Assert.Equal(-1, TestWorker.Committed(kafka.BootstrapServers, topic, group, 1)[0]);

        handler.ReleaseTask.SetResult();
        await stopping.WaitAsync(Patience);
        Assert.Equal(1, TestWorker.Committed(kafka.BootstrapServers, topic, group, 1)[0]);
    }

    /// <summary>A periodic method that never looks at its token, and a handler whose tasks complete at once.</summary>
    private sealed partial class DeafPeriodicHandler : DrakkarHandler
    {
        public TaskCompletionSource PeriodicRunning { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _never = new();

        [Periodic(0.05)]
        private async ValueTask Hang(CancellationToken cancellationToken)
        {
            PeriodicRunning.TrySetResult();
            await _never.Task;
        }

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([.. messages.Select(m => new ExecutorTask(TaskId.New("quick"))
            {
                Precomputed = new PrecomputedResult(),
                SourceOffsets = [m.Offset],
            })]);
    }

    /// <summary>
    /// The stop waited for periodic methods without a bound: one that ignored its token held the worker for good (no
    /// drain, no commit, "Stopped" never logged) until it was killed.
    /// </summary>
    [Theory]
    [InlineData(20, "5")]
    // A short bound: the periodic methods get a quarter of it, and the drain and commit the rest (all of it once went
    // to them, and the drain was then given a negative time).
    [InlineData(2, "0.5")]
    public async Task A_periodic_method_that_ignores_its_token_is_named_and_left_behind_and_the_stop_drains_and_commits(int drainSeconds, string waited)
    {
        var topic = kafka.CreateTopic("deaf-periodic");
        var group = $"{topic}-g";
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 3);
        var handler = new DeafPeriodicHandler();
        using var logs = new LogCapture();
        var worker = await TestWorker.StartAsync(handler, TestWorker.Config(kafka.BootstrapServers, topic, group, c => c.Executor.DrainTimeoutSeconds = drainSeconds),
            loggers: logs);
        await handler.PeriodicRunning.Task.WaitAsync(Patience);
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, 1)[0] == 3, Patience, "the three messages were committed");

        var stopping = worker.StopAsync();
        Assert.Same(stopping, await Task.WhenAny(stopping, Task.Delay(Patience)));

        Assert.Single(logs.Containing($"Periodic method(s) Hang did not return within {waited} s"));
        // The rest of the stop ran: the consumer drained and left, and the parts closed.
        Assert.Contains(logs.Containing("Stopped"), l => l.Message == "Stopped");
        await worker.DisposeAsync();
    }

    /// <summary>An OnReady that never returns (a migration waiting on a lock, say).</summary>
    private sealed class HangingOnReadyHandler : DrakkarHandler
    {
        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _never = new();

        public override async ValueTask OnReady(DrakkarConfig config, Npgsql.NpgsqlDataSource? postgres)
        {
            Reached.TrySetResult();
            await _never.Task;
        }

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    /// <summary>
    /// The start-up hooks take no token, and the start waited for them for good: SIGTERM while OnReady hung did nothing
    /// until the process was killed. A stop asked meanwhile now ends the start and closes what had opened.
    /// </summary>
    [Fact]
    public async Task A_stop_asked_while_OnReady_hangs_ends_the_start_and_closes_what_had_opened()
    {
        var topic = kafka.CreateTopic("hung-ready");
        var port = FreePort.Next();
        var config = TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c =>
        {
            c.Metrics.Enabled = true;
            c.Metrics.Host = "127.0.0.1";
            c.Metrics.Port = port;
        });
        var handler = new HangingOnReadyHandler();
        using var stop = new CancellationTokenSource();
        var starting = TestWorker.StartAsync(handler, config, cancellationToken: stop.Token);
        await handler.Reached.Task.WaitAsync(Patience);
        using (var client = new System.Net.Sockets.TcpClient())
            await client.ConnectAsync(System.Net.IPAddress.Loopback, port); // the endpoint is up while OnReady runs

        await stop.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => starting.WaitAsync(TimeSpan.FromSeconds(20)));
        // What had opened is closed: the metrics port is free again.
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
        listener.Start();
        listener.Stop();
    }

    /// <summary>An OnRevoke that waits until the test lets it go.</summary>
    private sealed class HangingOnRevokeHandler : DrakkarHandler
    {
        public TaskCompletionSource Assigned { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override ValueTask OnAssign(IReadOnlyList<PartitionId> partitions)
        {
            Assigned.TrySetResult();
            return ValueTask.CompletedTask;
        }

        public override async ValueTask OnRevoke(IReadOnlyList<PartitionId> partitions) => await Release.Task;

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    /// <summary>A stop held by OnRevoke said that leaving the group did not finish, which points at the broker.</summary>
    [Fact]
    public async Task A_stop_held_by_a_hanging_OnRevoke_ends_at_the_drain_bound_and_names_the_hook()
    {
        var topic = kafka.CreateTopic("hung-revoke");
        var handler = new HangingOnRevokeHandler();
        using var logs = new LogCapture();
        var worker = await TestWorker.StartAsync(handler, TestWorker.Config(kafka.BootstrapServers, topic, $"{topic}-g", c => c.Executor.DrainTimeoutSeconds = 3),
            loggers: logs);
        try
        {
            await handler.Assigned.Task.WaitAsync(Patience);

            var stopping = worker.StopAsync();
            Assert.Same(stopping, await Task.WhenAny(stopping, Task.Delay(Patience)));

            Assert.Single(logs.Containing("Stopping: leaving the group (the handler's OnRevoke has not returned) did not finish within the drain bound"));
        }
        finally
        {
            handler.Release.TrySetResult();
            await worker.DisposeAsync();
        }
    }

    /// <summary>Records which partitions the rebalance hooks named; arranges no task.</summary>
    private sealed class MembershipHandler : DrakkarHandler
    {
        private int _assigned;
        private int _revoked;

        public int Assigned => Volatile.Read(ref _assigned);
        public int Revoked => Volatile.Read(ref _revoked);

        public override ValueTask OnAssign(IReadOnlyList<PartitionId> partitions)
        {
            Interlocked.Add(ref _assigned, partitions.Count);
            return ValueTask.CompletedTask;
        }

        public override ValueTask OnRevoke(IReadOnlyList<PartitionId> partitions)
        {
            Interlocked.Add(ref _revoked, partitions.Count);
            return ValueTask.CompletedTask;
        }

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    [Fact]
    public async Task Workers_disposed_without_a_stop_leave_their_group_one_after_the_other()
    {
        var topic = kafka.CreateTopic("dispose-leave", partitions: 2);
        var group = $"{topic}-g";
        var first = new MembershipHandler();
        var second = new MembershipHandler();
        var firstWorker = await TestWorker.StartAsync(first, TestWorker.Config(kafka.BootstrapServers, topic, group), workerId: "first");
        var secondWorker = await TestWorker.StartAsync(second, TestWorker.Config(kafka.BootstrapServers, topic, group), workerId: "second");
        // A cooperative rebalance on the embedded broker takes rounds of about 5 s (20 s alone here); under a full
        // test run's load 30 s was once not enough, so this wait allows what the other two-member tests allow.
        await Eventually.True(() => first.Assigned > 0 && second.Assigned > 0, TimeSpan.FromSeconds(120), "each member owns a partition");

        // Disposing the second hands its partition to the first (a rebalance), then the first leaves while it owns both.
        var secondLeft = secondWorker.DisposeAsync().AsTask();
        Assert.Same(secondLeft, await Task.WhenAny(secondLeft, Task.Delay(Patience)));
        var firstLeft = firstWorker.DisposeAsync().AsTask();
        Assert.Same(firstLeft, await Task.WhenAny(firstLeft, Task.Delay(Patience)));

        // Each left through a revoke of everything it owned, as a stopped worker does.
        Assert.Equal(second.Assigned, second.Revoked);
        Assert.Equal(first.Assigned, first.Revoked);
    }
}
