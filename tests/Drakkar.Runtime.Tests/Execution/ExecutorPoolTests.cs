using System.Globalization;
using Drakkar.Execution;
using static Drakkar.Runtime.Tests.Execution.ProcessTestSupport;

namespace Drakkar.Runtime.Tests.Execution;

/// <summary>E1 and E3's lifecycle rules: the shared slot pool, its priority order, cancellation and shutdown.</summary>
public sealed class ExecutorPoolTests
{
    /// <summary>A task that holds its slot until <paramref name="releaseFile"/> exists.</summary>
    private static ExecutorTask Blocker(string releaseFile) =>
        Shell($"while [ ! -e {releaseFile} ]; do sleep 0.01; done", "blocker");

    /// <summary>A task that records its grandchild's pid then waits on it forever.</summary>
    private static ExecutorTask LongRunning(string pidFile) =>
        Shell($"sleep 30 & echo $! > {pidFile}; wait", "long");

    [Fact]
    public async Task Waiting_tasks_start_in_priority_order_with_fifo_ties()
    {
        using var scratch = new ScratchDirectory();
        await using var pool = Pool(Config(maxExecutors: 1));
        var go = scratch["go"];
        var order = scratch["order"];
        var blocker = pool.ExecuteAsync(Blocker(go), 0).AsTask();
        await Until(() => pool.ActiveCount == 1, "the blocker holds the only slot");

        var submitted = new List<Task<ExecutorOutcome>>();
        foreach (var (name, priority) in new[] { ("five", 5L), ("one", 1L), ("three-a", 3L), ("three-b", 3L), ("minus", -2L) })
        {
            submitted.Add(pool.ExecuteAsync(Shell($"echo {name} >> {order}", name), priority).AsTask());
        }

        await Until(() => pool.WaitingCount == 5, "all five wait");
        await File.WriteAllTextAsync(go, "");
        var outcomes = await Task.WhenAll(submitted.Append(blocker));

        Assert.All(outcomes, outcome => Assert.True(outcome.Succeeded, outcome.ToString()));
        Assert.Equal(["minus", "one", "three-a", "three-b", "five"], await File.ReadAllLinesAsync(order));
        Assert.Equal(0, pool.ActiveCount);
        Assert.Equal(0, pool.WaitingCount);
    }

    [Fact]
    public async Task Concurrency_never_exceeds_max_executors_and_reaches_it()
    {
        using var scratch = new ScratchDirectory();
        await using var pool = Pool(Config(maxExecutors: 2));
        var running = scratch["running"];
        Directory.CreateDirectory(running);
        var counts = scratch["counts"];
        // Each child marks itself running, records how many are running, lingers, and unmarks itself before it
        // exits; so every recorded count is a lower bound of the pool's true concurrency at that moment.
        var script = $"touch {running}/$$; ls {running} | wc -l >> {counts}; sleep 0.05; rm {running}/$$";

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => pool.ExecuteAsync(Shell(script), i).AsTask()));

        Assert.All(outcomes, outcome => Assert.True(outcome.Succeeded, outcome.ToString()));
        var seen = (await File.ReadAllLinesAsync(counts)).Select(line => int.Parse(line.Trim(), CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(12, seen.Count);
        Assert.Equal(2, seen.Max());
    }

    [Fact]
    public async Task Cancelling_a_waiting_task_removes_it_and_frees_nothing_it_did_not_hold()
    {
        using var scratch = new ScratchDirectory();
        await using var pool = Pool(Config(maxExecutors: 1));
        var go = scratch["go"];
        var blocker = pool.ExecuteAsync(Blocker(go), 0).AsTask();
        await Until(() => pool.ActiveCount == 1, "the blocker runs");
        using var cancel = new CancellationTokenSource();
        var marker = scratch["ran"];
        var waiting = pool.ExecuteAsync(Shell($"touch {marker}"), 0, cancellationToken: cancel.Token).AsTask();
        var after = pool.ExecuteAsync(Shell("echo after"), 1).AsTask();
        await Until(() => pool.WaitingCount == 2, "two tasks wait");

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(1, pool.WaitingCount);
        Assert.Equal(1, pool.ActiveCount);
        await File.WriteAllTextAsync(go, "");
        Assert.Equal("after\n", (await after).Result!.Stdout);
        Assert.True((await blocker).Succeeded);
        Assert.False(File.Exists(marker), "the cancelled task must never run");
        Assert.Equal(0, pool.ActiveCount);
    }

    [Fact]
    public async Task Cancelling_a_running_task_kills_its_process_group_and_frees_the_slot()
    {
        using var scratch = new ScratchDirectory();
        await using var pool = Pool(Config(maxExecutors: 1, timeoutSeconds: 60));
        using var cancel = new CancellationTokenSource();
        var pidFile = scratch["grandchild"];
        var running = pool.ExecuteAsync(LongRunning(pidFile), 0, cancellationToken: cancel.Token).AsTask();
        var grandchild = await ReadPidFile(pidFile);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        await Until(() => !IsAlive(grandchild), $"grandchild {grandchild} is dead");
        Assert.Equal(0, pool.ActiveCount);
        Assert.Equal("next\n", (await pool.ExecuteAsync(Shell("echo next"), 0)).Result!.Stdout);
    }

    [Fact]
    public async Task Dispose_kills_running_children_cancels_waiters_and_refuses_new_work()
    {
        using var scratch = new ScratchDirectory();
        var pool = Pool(Config(maxExecutors: 2, timeoutSeconds: 60));
        var first = pool.ExecuteAsync(LongRunning(scratch["a"]), 0).AsTask();
        var second = pool.ExecuteAsync(LongRunning(scratch["b"]), 0).AsTask();
        var waiting = pool.ExecuteAsync(Shell("echo never"), 0).AsTask();
        var grandchildren = new[] { await ReadPidFile(scratch["a"]), await ReadPidFile(scratch["b"]) };
        await Until(() => pool.WaitingCount == 1, "the third task waits");

        await pool.DisposeAsync();

        // Disposal returns only after every child is reaped, so the tasks are already settled.
        Assert.All([first, second, waiting], task => Assert.True(task.IsCanceled, $"{task.Status}"));
        await Until(() => grandchildren.All(pid => !IsAlive(pid)), "every grandchild is dead");
        Assert.Equal(0, pool.ActiveCount);
        Assert.Throws<ObjectDisposedException>(() => { _ = pool.ExecuteAsync(Shell("true"), 0); });
    }
}
