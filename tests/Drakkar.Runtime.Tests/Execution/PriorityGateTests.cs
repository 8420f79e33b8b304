using Drakkar.Execution;

namespace Drakkar.Runtime.Tests.Execution;

public sealed class PriorityGateTests
{
    [Fact]
    public async Task A_free_slot_is_taken_at_once_and_released_to_the_best_waiter_not_a_newcomer()
    {
        var gate = new PriorityGate(1);
        Assert.True(gate.WaitAsync(10, CancellationToken.None).IsCompletedSuccessfully);

        var late = gate.WaitAsync(7, CancellationToken.None).AsTask();
        var best = gate.WaitAsync(3, CancellationToken.None).AsTask();
        Assert.Equal(2, gate.Waiting);

        gate.Release();
        await best;
        Assert.False(late.IsCompleted);
        // A newcomer with a better priority still queues while the slot is held.
        var newcomer = gate.WaitAsync(0, CancellationToken.None).AsTask();
        gate.Release();
        await newcomer;
        gate.Release();
        await late;
        gate.Release();
        Assert.Equal(0, gate.InUse);
        Assert.Equal(0, gate.Waiting);
    }

    [Fact]
    public async Task Mass_cancellation_leaves_the_remaining_order_and_counts_intact()
    {
        var gate = new PriorityGate(1);
        await gate.WaitAsync(0, CancellationToken.None);
        using var revoke = new CancellationTokenSource();
        var cancelled = Enumerable.Range(0, 1000).Select(i => gate.WaitAsync(i, revoke.Token).AsTask()).ToList();
        var kept = new[] { 500L, 5L, 50L }.Select(p => (Priority: p, Task: gate.WaitAsync(p, CancellationToken.None).AsTask())).ToList();

        await revoke.CancelAsync();

        Assert.All(cancelled, task => Assert.True(task.IsCanceled));
        Assert.Equal(3, gate.Waiting);
        foreach (var expected in kept.OrderBy(k => k.Priority))
        {
            gate.Release();
            await expected.Task;
            Assert.All(kept.Where(k => k.Priority > expected.Priority), k => Assert.False(k.Task.IsCompleted));
        }

        gate.Release();
        Assert.Equal(0, gate.InUse);
        Assert.Throws<InvalidOperationException>(gate.Release);
    }
}
