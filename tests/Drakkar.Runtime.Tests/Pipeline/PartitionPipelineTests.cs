using Drakkar.Pipeline;

namespace Drakkar.Runtime.Tests.Pipeline;

public sealed class PartitionPipelineTests
{
    private static ExecutorError Failed(ExecutorTask task) => new(task, ExecutorFailure.NonZeroExit, 1, "boom", null, 1);

    [Fact]
    public async Task While_windows_are_arranged_the_load_never_dips_below_the_work_the_pipeline_holds()
    {
        // Every task is held, so nothing leaves the load: a window swaps its messages for as many tasks, and the load
        // may only grow as messages arrive. A dip (the messages taken out before the tasks were counted) is room the
        // poll thread would fill with records past the high mark.
        const int messages = 4000;
        var h = new PipelineHarness(windowSize: 16);
        h.Handler.ArrangeWith = (window, _) => [.. window.Select(m => new ExecutorTask($"task-{m.Offset}") { SourceOffsets = [m.Offset] })];
        for (var i = 0; i < messages; i++) h.Executor.Hold($"task-{i}");
        var dips = 0;
        var watching = true;
        var watcher = new Thread(() =>
        {
            var last = 0L;
            while (Volatile.Read(ref watching))
            {
                var now = h.Load.Current;
                if (now < last) dips++;
                last = now;
            }
        });
        watcher.Start();

        h.Feed(messages);
        await PipelineHarness.Until(() => h.Executor.Attempts.Count == messages, "every task started");
        Volatile.Write(ref watching, false);
        watcher.Join();

        Assert.Equal(0, dips);
        Assert.Equal(messages, h.Load.Current);
        for (var i = 0; i < messages; i++) h.Executor.Release($"task-{i}");
        await h.WaitForWatermark(messages, "every message done");
        Assert.Equal(0, h.Load.Current);
    }

    [Fact]
    public async Task Before_its_first_commit_the_lag_counts_from_where_consumption_started_not_from_offset_zero()
    {
        // A partition taken over at offset 5,000 (the group's committed offset): three messages read, none committed.
        var h = new PipelineHarness(windowSize: 1, firstOffset: 5000);
        h.Handler.ArrangeWith = (messages, _) => [.. messages.Select(m => new ExecutorTask($"task-{m.Offset}") { SourceOffsets = [m.Offset] })];
        for (var offset = 5000; offset < 5003; offset++) h.Executor.Hold($"task-{offset}");
        h.Feed(3);
        await PipelineHarness.Until(() => h.Executor.Attempts.Count == 3, "three tasks started");
        Assert.Equal(3, h.Pipeline.Lag);

        for (var offset = 5000; offset < 5003; offset++) h.Executor.Release($"task-{offset}");
        await h.WaitForWatermark(5003, "every message done");
        h.Pipeline.ConfirmCommitted(5002);
        Assert.Equal(1, h.Pipeline.Lag);
    }

    [Fact]
    public async Task Out_of_order_completion_never_moves_the_watermark_past_an_unfinished_message()
    {
        // One message per window: a window's messages also wait for its window hook, which would hide the order.
        var h = new PipelineHarness(windowSize: 1);
        h.Handler.ArrangeWith = (messages, _) => [.. messages.Select(m => new ExecutorTask($"task-{m.Offset}") { SourceOffsets = [m.Offset] })];
        for (var i = 0; i < 5; i++) h.Executor.Hold($"task-{i}");
        h.Feed(5);
        await PipelineHarness.Until(() => h.Executor.Attempts.Count == 5, "all five tasks started");

        foreach (var offset in new[] { 4, 3, 1 })
        {
            h.Executor.Release($"task-{offset}");
            await PipelineHarness.Until(() => h.Handler.MessageCompletions.ContainsKey(offset), $"message {offset} completed");
            Assert.Equal(-1, h.Watermark);
        }
        h.Executor.Release("task-0");
        await h.WaitForWatermark(2, "offsets 0 and 1 done, 2 still running");
        h.Executor.Release("task-2");
        await h.WaitForWatermark(5, "every message done");
    }

    [Fact]
    public async Task Messages_of_a_window_wait_for_the_window_hook_before_they_commit()
    {
        var h = new PipelineHarness();
        h.Handler.ArrangeWith = (messages, _) => [.. messages.Select(m => new ExecutorTask($"task-{m.Offset}") { SourceOffsets = [m.Offset] })];
        h.Executor.Hold("task-2");
        h.Feed(3);
        await PipelineHarness.Until(() => h.Handler.MessageCompletions.Count == 2, "two messages completed");
        Assert.Equal(-1, h.Watermark);
        h.Executor.Release("task-2");
        await h.WaitForWatermark(3, "window hook settled");
        Assert.Single(h.Handler.CompletedWindows);
    }

    [Fact]
    public async Task A_task_serving_three_messages_completes_each_exactly_once()
    {
        var h = new PipelineHarness();
        h.Handler.ArrangeWith = (messages, _) => [new ExecutorTask("fan-in") { SourceOffsets = [.. messages.Select(m => m.Offset)] }];
        h.Feed(3);
        await h.WaitForWatermark(3, "fan-in window done");
        Assert.Equal([0L, 1L, 2L], h.Handler.MessageCompletions.Keys.Order());
        Assert.All(h.Handler.MessageCompletions.Values, n => Assert.Equal(1, n));
        Assert.All(h.Handler.Groups, g => Assert.Equal("fan-in", Assert.Single(g.Results).Task.TaskId));
        Assert.Single(h.Handler.CompletedWindows);
    }

    [Fact]
    public async Task A_message_served_by_three_tasks_completes_once_after_the_last_of_them()
    {
        var h = new PipelineHarness();
        h.Handler.ArrangeWith = (messages, _) => [.. Enumerable.Range(0, 3).Select(i => new ExecutorTask($"fan-out-{i}") { SourceOffsets = [0] })];
        h.Executor.Hold("fan-out-2");
        h.Feed(1);
        await PipelineHarness.Until(() => h.Executor.Attempts.Count == 3, "three tasks started");
        Assert.Empty(h.Handler.MessageCompletions);
        h.Executor.Release("fan-out-2");
        await h.WaitForWatermark(1, "message done");
        Assert.Equal(1, h.Handler.MessageCompletions[0]);
        var group = Assert.Single(h.Handler.Groups);
        Assert.Equal(3, group.Succeeded);
        Assert.Equal(3, group.Total);
        Assert.True(group.AllSucceeded);
    }

    [Fact]
    public async Task Retry_reruns_the_same_task_up_to_max_retries_then_the_failure_is_final()
    {
        var h = new PipelineHarness(maxRetries: 2);
        h.Handler.ArrangeWith = (_, _) => [new ExecutorTask("flaky") { SourceOffsets = [0] }];
        h.Executor.Script = (task, _) => Failed(task);
        h.Handler.OnErrorWith = (_, _) => ErrorDecision.Retry;
        h.Feed(1);
        await h.WaitForWatermark(1, "final failure settles the message");
        Assert.Equal([1, 2, 3], h.Executor.Attempts.Where(a => a.TaskId == "flaky").Select(a => a.Attempt));
        var error = Assert.Single(Assert.Single(h.Handler.Groups).Errors);
        Assert.Equal(3, error.Attempt);
        Assert.Equal(2, h.Metrics.TaskRetries.Value());
    }

    [Fact]
    public async Task Replacement_tasks_keep_their_parents_messages_open_until_they_finish()
    {
        var h = new PipelineHarness();
        h.Handler.ArrangeWith = (messages, _) => [new ExecutorTask("parent") { SourceOffsets = [0, 1] }];
        h.Executor.Script = (task, _) => task.TaskId == "parent" ? Failed(task) : null;
        h.Handler.OnErrorWith = (task, _) => ErrorDecision.Replace(
        [
            new ExecutorTask("child-a") { SourceOffsets = [0] },
            new ExecutorTask("child-b") { SourceOffsets = [0, 1] },
        ]);
        h.Executor.Hold("child-b");
        h.Feed(2);
        await PipelineHarness.Until(() => h.Executor.Attempts.Any(a => a.TaskId == "child-b"), "replacements started");
        await PipelineHarness.Until(() => h.Executor.Attempts.Any(a => a.TaskId == "child-a"), "child-a ran");
        Assert.Empty(h.Handler.MessageCompletions);
        Assert.Equal(-1, h.Watermark);

        h.Executor.Release("child-b");
        await h.WaitForWatermark(2, "both messages done");
        var first = h.Handler.Groups.Single(g => g.Message.Offset == 0);
        Assert.Equal(["parent"], first.ReplacedTaskIds);
        Assert.Equal(["child-a", "child-b"], first.Results.Select(r => r.Task.TaskId).Order());
        Assert.Empty(first.Errors);
        Assert.All(first.Tasks.Where(t => t.TaskId != "parent"), t => Assert.Equal("parent", t.ParentTaskId));
    }

    /// <summary>
    /// An OnError that replaced whatever failed looped without end (1,840 OnError calls in 8 s in a newcomer's run): the
    /// message never completed and its partition never committed past it. A chain ends after 16 generations.
    /// </summary>
    [Fact]
    public async Task A_chain_of_replacements_ends_after_16_generations_with_a_final_failure()
    {
        var h = new PipelineHarness();
        h.Handler.ArrangeWith = (_, _) => [new ExecutorTask("gen-0") { SourceOffsets = [0] }];
        h.Executor.Script = (task, _) => Failed(task);
        var made = 0;
        h.Handler.OnErrorWith = (_, _) => ErrorDecision.Replace([new ExecutorTask($"gen-{Interlocked.Increment(ref made)}") { SourceOffsets = [0] }]);
        h.Feed(1);
        await h.WaitForWatermark(1, "the chain ends and the message settles");
        Assert.Equal(PartitionPipeline.MaxReplacementGenerations + 1, h.Executor.Attempts.Count);
        var group = Assert.Single(h.Handler.Groups);
        Assert.Equal("gen-16", Assert.Single(group.Errors).Task.TaskId);
        Assert.Equal(16, group.ReplacedTaskIds.Count);
    }

    [Fact]
    public async Task Replacements_wait_the_retry_backoff_that_grows_with_each_generation()
    {
        var h = new PipelineHarness(retryBackoff: RetryBackoff.FromMilliseconds(200, 10_000));
        h.Handler.ArrangeWith = (_, _) => [new ExecutorTask("gen-0") { SourceOffsets = [0] }];
        var started = new System.Collections.Concurrent.ConcurrentDictionary<string, long>();
        h.Executor.Script = (task, _) =>
        {
            started[task.TaskId] = System.Diagnostics.Stopwatch.GetTimestamp();
            return task.TaskId == "gen-2" ? null : Failed(task);
        };
        var made = 0;
        h.Handler.OnErrorWith = (_, _) => ErrorDecision.Replace([new ExecutorTask($"gen-{Interlocked.Increment(ref made)}") { SourceOffsets = [0] }]);
        h.Feed(1);
        await h.WaitForWatermark(1, "gen-2 succeeds");

        // Generation n waits between half and all of 200 ms × 2^(n-1), as retry n does.
        Assert.InRange(System.Diagnostics.Stopwatch.GetElapsedTime(started["gen-0"], started["gen-1"]).TotalMilliseconds, 95, 5_000);
        Assert.InRange(System.Diagnostics.Stopwatch.GetElapsedTime(started["gen-1"], started["gen-2"]).TotalMilliseconds, 195, 5_000);
    }

    [Fact]
    public async Task An_empty_replacement_list_drops_the_task_and_settles_its_messages()
    {
        var h = new PipelineHarness();
        h.Handler.ArrangeWith = (_, _) => [new ExecutorTask("doomed") { SourceOffsets = [0] }];
        h.Executor.Script = (task, _) => Failed(task);
        h.Handler.OnErrorWith = (_, _) => ErrorDecision.Replace([]);
        h.Feed(1);
        await h.WaitForWatermark(1, "dropped task settles");
        Assert.Equal(["doomed"], Assert.Single(h.Handler.Groups).ReplacedTaskIds);
    }

    [Fact]
    public async Task Arrange_returning_no_tasks_completes_the_window_at_once_without_a_window_hook()
    {
        var h = new PipelineHarness();
        h.Handler.ArrangeWith = (_, _) => [];
        h.Feed(10);
        await h.WaitForWatermark(10, "filtered window done");
        Assert.Empty(h.Executor.Attempts);
        Assert.Equal(10, h.Handler.MessageCompletions.Count);
        Assert.All(h.Handler.Groups, g => Assert.True(g.IsEmpty));
        Assert.Empty(h.Handler.CompletedWindows);
    }

    [Fact]
    public async Task Arrange_throwing_dead_letters_the_window_and_the_partition_keeps_going()
    {
        var h = new PipelineHarness(windowSize: 3);
        var calls = 0;
        h.Handler.ArrangeWith = (messages, _) => Interlocked.Increment(ref calls) == 1
            ? throw new InvalidOperationException("bad window")
            : [.. messages.Select(m => new ExecutorTask($"ok-{m.Offset}") { SourceOffsets = [m.Offset] })];
        h.Feed(3);
        await h.WaitForWatermark(3, "failed window settled through the DLQ");
        h.Feed(3);
        await h.WaitForWatermark(6, "next window processed");
        var (origin, error) = Assert.Single(h.Delivery.DeadLetters);
        Assert.Equal([0L, 1L, 2L], origin.Offsets);
        Assert.Contains("bad window", error);
        Assert.Equal(3, h.Executor.Attempts.Count);
    }

    [Fact]
    public async Task OnError_throwing_makes_the_failure_final_and_never_wedges_the_partition()
    {
        var h = new PipelineHarness();
        h.Executor.Script = (task, _) => Failed(task);
        h.Handler.OnErrorWith = (_, _) => throw new InvalidOperationException("handler bug");
        h.Feed(4);
        await h.WaitForWatermark(4, "all settled despite the throwing hook");
        Assert.All(h.Handler.Groups, g => Assert.Equal(1, g.Failed));
    }

    [Fact]
    public async Task OnTaskComplete_throwing_makes_that_task_a_final_failure()
    {
        var h = new PipelineHarness();
        h.Handler.OnTaskCompleteWith = _ => throw new InvalidOperationException("collect bug");
        h.Feed(1);
        await h.WaitForWatermark(1, "settled");
        var error = Assert.Single(Assert.Single(h.Handler.Groups).Errors);
        Assert.Equal(ExecutorFailure.HookFailed, error.Failure);
        Assert.Contains("collect bug", error.Exception);
    }

    [Fact]
    public async Task Payloads_from_every_hook_are_delivered_with_their_source_messages()
    {
        var h = new PipelineHarness();
        h.Handler.OnTaskCompleteWith = r => new CollectResult { Kafka = { KafkaPayload.Of(new Note(r.Stdout)) } };
        h.Handler.OnMessageCompleteWith = g => new CollectResult { Files = { FilePayload.Of("out.jsonl", new Note($"msg-{g.Message.Offset}")) } };
        h.Feed(2);
        await h.WaitForWatermark(2, "done");
        Assert.Equal(4, h.Delivery.Delivered.Count);
        var fileDelivery = h.Delivery.Delivered.Where(d => d.Result.Files.Count == 1).Select(d => d.Origin.Offsets.Single()).Order();
        Assert.Equal([0L, 1L], fileDelivery);
        Assert.Contains(h.Delivery.Delivered, d => d.Result.Kafka.Count == 1 && d.Result.Kafka[0].Data.ToJson().StartsWith("{\"text\":\"t-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Each_hook_call_is_named_in_its_origin_the_same_way_when_the_messages_are_processed_again()
    {
        // Two tasks per message, with ids that differ on every run (time-based), as most handlers make them.
        async Task<Dictionary<string, (long Offset, string Hook)>> RunAsync()
        {
            var h = new PipelineHarness();
            h.Handler.ArrangeWith = (messages, _) =>
                [.. messages.SelectMany(m => new[] { "grep", "count" }.Select(kind => new ExecutorTask(TaskId.New(kind)) { SourceOffsets = [m.Offset] }))];
            h.Handler.OnTaskCompleteWith = r => new CollectResult { Http = { HttpPayload.Of(new Note(r.Task.TaskId)) } };
            h.Handler.OnMessageCompleteWith = g => new CollectResult { Http = { HttpPayload.Of(new Note($"message-{g.Message.Offset}")) } };
            h.Feed(2);
            await h.WaitForWatermark(2, "done");
            await PipelineHarness.Until(() => h.Delivery.Delivered.Count == 6, "every hook call's payloads handed over");
            // Keyed by what the payload stands for, independent of the run: the task's kind (its id's prefix) and message.
            return h.Delivery.Delivered.ToDictionary(
                d => d.Result.Http[0].Data.ToJson().Split('"')[3] is var text && text.StartsWith("message-", StringComparison.Ordinal)
                    ? text
                    : $"{text.Split('-')[0]}-{d.Origin.Offsets.Single()}",
                d => (d.Origin.Offsets.Single(), d.Origin.Hook));
        }

        var first = await RunAsync();
        var again = await RunAsync();

        Assert.Equal(6, first.Values.Distinct().Count());
        Assert.Equal(("on_task_complete #0", "on_task_complete #1", "on_message_complete"),
            (first["grep-0"].Hook, first["count-0"].Hook, first["message-0"].Hook));
        Assert.Equal(first.OrderBy(e => e.Key), again.OrderBy(e => e.Key));
    }

    [Fact]
    public async Task A_task_that_lists_no_open_message_still_hands_its_payloads_over()
    {
        var h = new PipelineHarness();
        h.Handler.ArrangeWith = (messages, _) => [new ExecutorTask("orphan") { SourceOffsets = [999] }, new ExecutorTask("served") { SourceOffsets = [messages[0].Offset] }];
        h.Handler.OnTaskCompleteWith = r => new CollectResult { Kafka = { KafkaPayload.Of(new Note(r.Task.TaskId)) } };
        h.Feed(1);
        await h.WaitForWatermark(1, "done");
        await PipelineHarness.Until(() => h.Delivery.Delivered.Count == 2, "both tasks' payloads handed over");
        Assert.Contains(h.Delivery.Delivered, d => d.Origin.Messages.Count == 0 && d.Result.Kafka[0].Data.ToJson() == "{\"text\":\"orphan\"}");
    }

    [Fact]
    public async Task Pending_tasks_of_earlier_windows_are_visible_to_arrange()
    {
        var h = new PipelineHarness(windowSize: 1);
        var seen = new List<string[]>();
        h.Handler.ArrangeWith = (messages, pending) =>
        {
            lock (seen) seen.Add([.. pending.PendingTaskIds]);
            return [new ExecutorTask($"w-{messages[0].Offset}") { SourceOffsets = [messages[0].Offset] }];
        };
        h.Executor.Hold("w-0");
        h.Feed(1);
        await PipelineHarness.Until(() => h.Executor.Attempts.Count == 1, "first task running");
        h.Feed(1);
        await PipelineHarness.Until(() => h.Executor.Attempts.Count == 2, "second window arranged");
        h.Executor.Release("w-0");
        await h.WaitForWatermark(2, "done");
        Assert.Equal(["w-0"], seen[1]);
    }

    [Fact]
    public async Task Drain_finishes_started_work_and_lets_queued_messages_go_uncommitted()
    {
        var h = new PipelineHarness(windowSize: 2);
        var arrangeGate = new ManualResetEventSlim();
        h.Executor.Hold("slow");
        h.Handler.ArrangeWith = (messages, _) =>
        {
            // The second window is being arranged when the drain begins: started work, so it finishes.
            if (messages[0].Offset == 2) arrangeGate.Wait(TimeSpan.FromSeconds(10));
            return [.. messages.Select(m => new ExecutorTask(m.Offset == 0 ? "slow" : $"t-{m.Offset}") { SourceOffsets = [m.Offset] })];
        };
        h.Feed(6);
        await PipelineHarness.Until(() => h.Handler.ArrangedWindows.Count == 2, "second window in Arrange");
        var drain = h.Pipeline.DrainAsync(TimeSpan.FromSeconds(10));
        arrangeGate.Set();
        await PipelineHarness.Until(() => h.Handler.MessageCompletions.ContainsKey(3), "second window done");
        Assert.False(drain.IsCompleted);
        h.Executor.Release("slow");
        Assert.True(await drain);
        // Offsets 4 and 5 were still queued: never arranged, not committed, left for the next owner.
        Assert.Equal(4, h.Watermark);
        Assert.Equal(2, h.Handler.ArrangedWindows.Count);
    }

    [Fact]
    public async Task Drain_timeout_cancels_what_is_left_and_keeps_it_uncommitted()
    {
        var h = new PipelineHarness(windowSize: 1);
        h.Handler.ArrangeWith = (messages, _) => [.. messages.Select(m => new ExecutorTask($"t-{m.Offset}") { SourceOffsets = [m.Offset] })];
        h.Executor.Hold("t-1");
        h.Feed(3);
        await PipelineHarness.Until(() => h.Handler.MessageCompletions.ContainsKey(2), "others finished");
        Assert.False(await h.Pipeline.DrainAsync(TimeSpan.FromMilliseconds(200)));
        Assert.Equal(1, h.Watermark);
    }

    [Fact]
    public async Task Load_counts_queued_messages_and_unfinished_tasks()
    {
        var h = new PipelineHarness();
        h.Handler.ArrangeWith = (messages, _) => [.. messages.Select(m => new ExecutorTask($"t-{m.Offset}") { SourceOffsets = [m.Offset] })];
        for (var i = 0; i < 4; i++) h.Executor.Hold($"t-{i}");
        h.Feed(4);
        await PipelineHarness.Until(() => h.Executor.Attempts.Count == 4, "tasks running");
        Assert.Equal(4, h.Load.Current);
        for (var i = 0; i < 4; i++) h.Executor.Release($"t-{i}");
        await h.WaitForWatermark(4, "done");
        Assert.Equal(0, h.Load.Current);
    }

    [Fact]
    public async Task A_window_whose_dead_letter_is_still_being_written_does_not_hold_back_the_next_window()
    {
        var h = new PipelineHarness(windowSize: 1);
        var dlqStored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Delivery.DeadLetterGate = dlqStored.Task;
        h.Handler.ArrangeWith = (messages, _) => messages[0].Offset == 0
            ? throw new InvalidOperationException("bad window")
            : [.. messages.Select(m => new ExecutorTask($"t-{m.Offset}") { SourceOffsets = [m.Offset] })];
        h.Feed(3);

        // Offsets 1 and 2 are processed while the DLQ still holds offset 0's record; nothing is committed past 0.
        await PipelineHarness.Until(() => h.Handler.MessageCompletions.ContainsKey(2), "later windows processed");
        Assert.Equal(-1, h.Watermark);
        dlqStored.SetResult();
        await h.WaitForWatermark(3, "the dead letter stored, everything done");
        Assert.Equal([0L], Assert.Single(h.Delivery.DeadLetters).Origin.Offsets);
    }

    [Fact]
    public async Task A_record_that_failed_dispatch_is_dead_lettered_and_its_offset_waits_for_the_dlq()
    {
        var h = new PipelineHarness();
        var dlqStored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Delivery.DeadLetterGate = dlqStored.Task;
        h.Feed(1);
        h.Pipeline.EnqueueFailed(new SourceMessage { Topic = "source", Partition = 0, Offset = 1, Value = [0xff] }, "dispatch failed: boom");
        await h.WaitForWatermark(1, "offset 0 done");
        await Task.Delay(100);
        Assert.Equal(1, h.Watermark);

        dlqStored.SetResult();
        await h.WaitForWatermark(2, "the failed record stored in the DLQ");
        var (origin, error) = Assert.Single(h.Delivery.DeadLetters);
        Assert.Equal([1L], origin.Offsets);
        Assert.Equal("dispatch failed: boom", error);
    }

    [Fact]
    public async Task A_record_arriving_while_the_partition_drains_is_refused_without_being_registered_or_dead_lettered()
    {
        // A record fetched just before a stop used to reach a draining pipeline: Enqueue threw after registering the
        // offset, the dispatch-failure path registered it again, and that second throw ended the poll loop.
        var h = new PipelineHarness();
        h.Feed(2);
        await h.WaitForWatermark(2, "two messages done");
        Assert.True(await h.Pipeline.DrainAsync(TimeSpan.FromSeconds(5)));

        var late = new SourceMessage { Topic = "source", Partition = 0, Offset = 2, Value = [(byte)'x'] };
        Assert.False(h.Pipeline.Enqueue(late));
        Assert.False(h.Pipeline.EnqueueFailed(late, "dispatch failed: late"));
        Assert.Empty(h.Delivery.DeadLetters);
        Assert.Equal(0, h.Pipeline.OpenMessages);
        Assert.Equal(2, h.Watermark);
    }

    [Fact]
    public void A_record_already_registered_is_not_registered_again_by_the_dispatch_failure_path()
    {
        var h = new PipelineHarness();
        var message = new SourceMessage { Topic = "source", Partition = 0, Offset = 0, Value = [(byte)'x'] };
        Assert.True(h.Pipeline.Enqueue(message));
        Assert.False(h.Pipeline.EnqueueFailed(message, "dispatch failed: twice"));
    }

    [Fact]
    public async Task Finished_messages_a_commit_does_not_cover_are_counted_for_the_next_owner()
    {
        var h = new PipelineHarness();
        h.Feed(3);
        await h.WaitForWatermark(3, "three messages done");
        Assert.Equal(3, h.Pipeline.FinishedUncommitted);
        h.Pipeline.ConfirmCommitted(2);
        Assert.Equal(1, h.Pipeline.FinishedUncommitted);
        h.Pipeline.ConfirmCommitted(3);
        Assert.Equal(0, h.Pipeline.FinishedUncommitted);
    }
}
