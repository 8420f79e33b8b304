using Drakkar.Diagnostics.Recorder;
using Drakkar.Execution;
using Drakkar.Observability.Metrics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Runtime.Tests.Diagnostics;

/// <summary>The flight recorder's buffer, filters and database, without a worker around it.</summary>
public sealed class FlightRecorderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-recorder-").FullName;
    private readonly DrakkarMetrics _metrics = new();

    public void Dispose()
    {
        _metrics.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Beyond_max_buffer_waiting_events_the_oldest_are_dropped_and_counted_and_the_newest_are_stored()
    {
        var config = new DebugConfig { Enabled = true, DbDir = _dir, MaxBuffer = 1000, RetentionMaxEvents = 100_000 };
        var recorder = NewRecorder(config);
        // The writer is not started yet: nothing stores the waiting events, as when the disk stalls.
        for (var i = 0; i < 1500; i++) Finish(recorder, $"t{i}", TimeSpan.FromMilliseconds(1), offset: i);
        Assert.Equal(0, recorder.Dropped);

        recorder.Start();
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();
        Assert.Equal(500, _metrics.RecorderEventsDropped.Value("buffer_full"));
        Assert.Equal(500, recorder.Dropped);
        Assert.Contains("drakkar_recorder_dropped_events_total{reason=\"buffer_full\"} 500", _metrics.Registry.Export());
        Assert.Equal([(1000L, 500L, 1499L)], Query(database, "SELECT count(*), min(offset), max(offset) FROM events WHERE kind = 'task_finished'"));
    }

    [Fact]
    public async Task Events_a_lane_overwrote_before_the_writer_reached_them_are_counted_and_the_rest_are_stored()
    {
        var config = new DebugConfig { Enabled = true, DbDir = _dir, MaxBuffer = 1_000_000, MaxUiRows = 100, RetentionMaxEvents = 1_000_000 };
        var recorder = NewRecorder(config);
        // One thread, the writer not started: its lane wraps several times.
        const int events = 100_000;
        for (var i = 0; i < events; i++) Finish(recorder, $"t{i}", TimeSpan.FromMilliseconds(1), offset: i);
        var capacity = recorder.Lanes.Single().Capacity;
        Assert.True(capacity < events / 2, $"a lane of {capacity}");

        recorder.Start();
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();
        var kept = capacity - EventLane.Margin;
        Assert.Equal(events - kept, recorder.Dropped);
        Assert.Equal([((long)kept, (long)(events - kept), events - 1L)],
            Query(database, "SELECT count(*), min(offset), max(offset) FROM events WHERE kind = 'task_finished'"));
    }

    [Fact]
    public async Task Slots_an_owner_overwrites_while_the_writer_reads_them_in_place_are_dropped_and_counted_and_the_rest_stored_whole()
    {
        var config = new DebugConfig { Enabled = true, DbDir = _dir, MaxUiRows = 100, RetentionMaxEvents = 1_000_000, FlushIntervalSeconds = 1 };
        var recorder = NewRecorder(config);
        // 1,000 events wait in this thread's lane; the writer is not started yet.
        for (var i = 0; i < 1000; i++) Finish(recorder, $"t{i}", TimeSpan.FromMilliseconds(1), offset: i);
        var lane = recorder.Lanes.Single();
        var window = lane.Capacity - EventLane.Margin;
        var added = window + 300 - 1000;
        // While the writer has read them in place and not yet checked them, the owner moves on past the window: the
        // slots the writer read are overwritten, or about to be.
        var database = await StoreWhileOvertaken(recorder, lane, fromOffset: 1000, added);
        // The 300 events whose slots the owner overwrote (or came within the margin of) while they were read are dropped
        // and counted, the rest of that round stored whole (stored as read, the overwritten ones would be there with
        // their old values and none counted).
        Assert.Equal(300, recorder.Dropped);
        Assert.Equal([((long)window, 300L, 1000L + added - 1)], Query(database, "SELECT count(*), min(offset), max(offset) FROM events WHERE kind = 'task_finished'"));
        Assert.Equal([(0L, 0L, 0L)], Query(database, "SELECT count(*), 0, 0 FROM events WHERE kind = 'task_finished' AND task_id <> 't' || offset"));
    }

    [Fact]
    public async Task Of_two_lanes_read_in_one_round_only_the_slots_the_overtaking_owner_reached_are_dropped()
    {
        var config = new DebugConfig { Enabled = true, DbDir = _dir, MaxUiRows = 100, RetentionMaxEvents = 1_000_000, FlushIntervalSeconds = 1 };
        var recorder = NewRecorder(config);
        // Another thread records offsets 0..499 first (lane B, lower seqs), then this thread 500..1499 (lane A): the round
        // reads B's events first, so dropping by place in the round rather than by lane would drop B's. The other thread
        // lives on until this one has a lane of its own (a thread that ended hands its lane over).
        using var recorded = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var other = new Thread(() =>
        {
            for (var i = 0; i < 500; i++) Finish(recorder, $"t{i}", TimeSpan.FromMilliseconds(1), offset: i);
            recorded.Set();
            release.Wait();
        });
        other.Start();
        recorded.Wait();
        for (var i = 500; i < 1500; i++) Finish(recorder, $"t{i}", TimeSpan.FromMilliseconds(1), offset: i);
        release.Set();
        other.Join();
        var lane = recorder.Lanes.Single(l => l.Owner == Thread.CurrentThread);
        var added = lane.Capacity - EventLane.Margin + 300 - 1000;
        var database = await StoreWhileOvertaken(recorder, lane, fromOffset: 1500, added);
        Assert.Equal(300, recorder.Dropped);
        Assert.Equal([(500L, 0L, 499L)], Query(database, "SELECT count(*), min(offset), max(offset) FROM events WHERE offset < 500"));
        Assert.Equal([(0L, 0L, 0L)], Query(database, "SELECT count(*), 0, 0 FROM events WHERE offset BETWEEN 500 AND 799"));
        Assert.Equal([(700L + added, 800L, 1500L + added - 1)], Query(database, "SELECT count(*), min(offset), max(offset) FROM events WHERE offset >= 800"));
        Assert.Equal([(0L, 0L, 0L)], Query(database, "SELECT count(*), 0, 0 FROM events WHERE kind = 'task_finished' AND task_id <> 't' || offset"));
    }

    [Fact]
    public async Task A_lane_read_while_its_thread_adds_and_wraps_returns_only_whole_events_in_order()
    {
        var lane = new EventLane(1024, Thread.CurrentThread);
        const long total = 2_000_000;
        var adding = Task.Factory.StartNew(() =>
        {
            lane.Owner = Thread.CurrentThread;
            for (long i = 0; i < total; i++)
                lane.Add(new FlightEvent(i, DateTimeOffset.UnixEpoch, FlightEvent.TaskFinished) { Offset = i, Count = (int)(i % 1_000_003), TaskId = $"t{i}" });
        }, TaskCreationOptions.LongRunning);
        var (read, skipped) = (0L, 0L);
        while (!adding.IsCompleted)
        {
            // The newest events, the oldest still readable, and some in the slots the owner is overwriting now (refused).
            var written = lane.Written;
            foreach (var position in new[] { written - 1, written - 2, lane.OldestReadable, lane.OldestReadable + 1, written - lane.Capacity + 1, written - lane.Capacity + 8 })
            {
                if (position < 0) continue;
                if (!lane.TryRead(position, out var e))
                {
                    skipped++;
                    continue;
                }
                // Every field of the event is the one written for this position: a torn copy mixes two.
                Assert.Equal((position, position, (int)(position % 1_000_003), $"t{position}"), (e.Seq, e.Offset!.Value, e.Count!.Value, e.TaskId));
                read++;
            }
        }
        await adding;
        // Once the owner is done, the newest events read back whole and in order.
        var newest = new List<long>();
        for (var position = total - 600; position < total; position++)
            newest.Add(lane.TryRead(position, out var e) ? e.Seq : -1);
        Assert.Equal(Enumerable.Range(0, 600).Select(i => total - 600 + i), newest);
        Assert.True(read > 0);
        Assert.True(skipped > 0);
    }

    [Fact]
    public async Task A_thread_that_ended_hands_its_lane_to_the_next_thread_that_records()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = "" });
        for (var i = 0; i < 3; i++)
        {
            var thread = new Thread(() => Finish(recorder, $"t{i}", TimeSpan.FromMilliseconds(1)));
            thread.Start();
            thread.Join();
        }
        Assert.Single(recorder.Lanes);
        Assert.Equal(["t2", "t1", "t0"], recorder.RecentTasks(10).Select(e => e.TaskId));
        await recorder.DisposeAsync();
    }

    [Fact]
    public async Task Output_and_task_rows_follow_store_output_and_the_min_duration_keys()
    {
        var config = new DebugConfig
        {
            Enabled = true, DbDir = _dir, FlushIntervalSeconds = 1, OutputMinDurationMs = 100, EventMinDurationMs = 10, LogMinDurationMs = 50,
        };
        var recorder = NewRecorder(config);
        recorder.Start();
        Finish(recorder, "fast", TimeSpan.FromMilliseconds(5));     // under event_min_duration_ms: memory only
        Finish(recorder, "medium", TimeSpan.FromMilliseconds(20));  // stored, without output
        Finish(recorder, "slow", TimeSpan.FromMilliseconds(200));   // stored with its output
        var database = recorder.DatabasePath!;
        var slow = recorder.SlowTasks(10);
        var recent = recorder.RecentTasks(10);
        await recorder.DisposeAsync();

        Assert.Equal(["slow", "medium", "fast"], recent.Select(t => t.TaskId));
        Assert.Equal(["slow"], slow.Select(t => t.TaskId));
        var rows = QueryText(database, "SELECT kind || ' ' || task_id || ' ' || coalesce(stdout, '-') FROM events ORDER BY seq");
        Assert.Equal(["task_finished medium -", "task_finished slow out of slow\n"], rows);
    }

    [Fact]
    public async Task Store_output_false_keeps_output_off_the_disk_and_on_the_page()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir, StoreOutput = false });
        recorder.Start();
        Finish(recorder, "slow", TimeSpan.FromMilliseconds(600));
        var failing = new ExecutorTask("failing") { SourceOffsets = [2] };
        recorder.TaskFinished(failing, 0, 1, ExecutorOutcome.Failure(new ExecutorError(failing, ExecutorFailure.NonZeroExit, 3,
            "cannot open input.csv", null, 43) { Duration = TimeSpan.FromMilliseconds(30) }));
        var database = recorder.DatabasePath!;
        var recent = recorder.RecentTasks(10);
        await recorder.DisposeAsync();

        // The page: the slow task's output and the failure's stderr, as debug-ui.md promises (before, neither was shown).
        Assert.Equal([("failing", (string?)"cannot open input.csv"), ("slow", "")], recent.Select(t => (t.TaskId!, t.Stderr)));
        Assert.Equal("out of slow\n", recent[1].Stdout);
        // The database: the events without their output.
        var rows = QueryText(database, "SELECT kind || ' ' || task_id || ' ' || coalesce(stdout, '-') || ' ' || coalesce(stderr, '-') FROM events ORDER BY seq");
        Assert.Equal(["task_finished slow - -", "task_failed failing - -"], rows);
    }

    [Fact]
    public async Task A_configured_secret_a_task_echoes_verbatim_is_masked_on_the_page_and_in_the_database()
    {
        var secrets = new Drakkar.Sinks.SinkSecretMasker();
        secrets.Add("zq7Bare0Token");
        var recorder = new FlightRecorder(new DebugConfig { Enabled = true, DbDir = _dir, OutputMinDurationMs = 0 }, ("w1", "c1", "", "{}", "debug: {}"),
            () => "{}", _metrics, NullLogger.Instance, secrets: secrets);
        recorder.Start();
        var task = new ExecutorTask("echoes") { SourceOffsets = [1] };
        recorder.TaskFinished(task, 0, 1, ExecutorOutcome.Failure(new ExecutorError(task, ExecutorFailure.NonZeroExit, 1,
            "the receiver refused zq7Bare0Token", null, 7) { Duration = TimeSpan.FromMilliseconds(1) }));
        var shown = recorder.RecentTasks(1).Single().Stderr!;
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();

        var stored = QueryText(database, "SELECT stderr FROM events WHERE kind = 'task_failed'").Single();
        Assert.Equal(["the receiver refused ***", "the receiver refused ***"], new[] { shown, stored });
    }

    [Fact]
    public async Task A_credential_the_output_excerpt_cuts_in_half_is_masked_before_the_cut()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir, OutputMinDurationMs = 0 });
        recorder.Start();
        // The password starts 4 characters before the excerpt's end: cut first, the rest no longer looked like a DSN.
        var stderr = new string('.', FlightRecorder.OutputExcerptChars - "postgresql://app:".Length - 4) + "postgresql://app:hunter2pw@db/app failed";
        var task = new ExecutorTask("cut") { SourceOffsets = [1] };
        recorder.TaskFinished(task, 0, 1, ExecutorOutcome.Failure(new ExecutorError(task, ExecutorFailure.NonZeroExit, 1,
            stderr, null, 7) { Duration = TimeSpan.FromMilliseconds(1) }));
        var shown = recorder.RecentTasks(1).Single().Stderr!;
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();

        var stored = QueryText(database, "SELECT stderr FROM events WHERE kind = 'task_failed'").Single();
        foreach (var text in new[] { shown, stored })
        {
            Assert.True(text.Length <= FlightRecorder.OutputExcerptChars, $"{text.Length} characters");
            Assert.DoesNotContain("hunt", text, StringComparison.Ordinal);
            Assert.Contains("postgresql://app:*", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Credentials_in_task_output_and_failures_are_masked_on_the_page_and_in_the_database()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir, OutputMinDurationMs = 0 });
        recorder.Start();
        var task = new ExecutorTask("leaky") { SourceOffsets = [1] };
        recorder.TaskFinished(task, 0, 1, ExecutorOutcome.Success(new ExecutorResult(task, 0,
            "using postgresql://app:hunter2pw@db/app", "Authorization: Bearer eyJsecret.token.sig", TimeSpan.FromMilliseconds(1), 1)));
        var failing = new ExecutorTask("leaky-failed") { SourceOffsets = [2] };
        recorder.TaskFinished(failing, 0, 1, ExecutorOutcome.Failure(new ExecutorError(failing, ExecutorFailure.SpawnFailed, null,
            "redis://:r3dispw@cache:6379 refused", "cannot reach redis://:r3dispw@cache:6379", null) { Duration = TimeSpan.FromMilliseconds(1) }));
        var recent = recorder.RecentTasks(10);
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();

        var shown = string.Join("\n", recent.Select(e => $"{e.Stdout} {e.Stderr} {e.Detail}"));
        var stored = string.Join("\n", QueryText(database, "SELECT coalesce(stdout, '') || ' ' || coalesce(stderr, '') || ' ' || coalesce(detail, '') FROM events ORDER BY seq"));
        foreach (var text in new[] { shown, stored })
        {
            Assert.Contains("postgresql://app:***@db/app", text, StringComparison.Ordinal);
            foreach (var secret in new[] { "hunter2pw", "eyJsecret", "r3dispw" }) Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Consumed_messages_are_stored_as_ranges_of_consecutive_offsets()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir });
        recorder.Start();
        foreach (var offset in new long[] { 0, 1, 2, 3, 10, 11 }) recorder.MessageConsumed(Message(offset));
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();
        Assert.Equal([(0L, 4L, 0L), (10L, 2L, 0L)], Query(database, "SELECT offset, count, partition FROM events WHERE kind = 'consumed' ORDER BY seq"));
    }

    [Fact]
    public async Task Enough_waiting_events_in_one_lane_are_stored_without_waiting_for_the_flush_interval()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir, FlushIntervalSeconds = 3600 });
        recorder.Start();
        for (var i = 0; i < FlightRecorder.LaneWakeEvents; i++) Finish(recorder, $"t{i}", TimeSpan.FromMilliseconds(1), offset: i);
        var database = recorder.DatabasePath!;
        // Only the wake on that many waiting events can store them: the interval is an hour away.
        var stored = 0L;
        for (var wait = 0; wait < 300 && stored < FlightRecorder.LaneWakeEvents; wait++)
        {
            await Task.Delay(100);
            stored = Query(database, "SELECT count(*), 0, 0 FROM events WHERE kind = 'task_finished'")[0].Item1;
        }
        await recorder.DisposeAsync();
        Assert.Equal(FlightRecorder.LaneWakeEvents, stored);
    }

    [Fact]
    public async Task A_round_a_full_lane_woke_does_not_wake_another_at_once_for_the_events_added_while_it_read()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir, FlushIntervalSeconds = 3600 });
        recorder.Start();
        var database = recorder.DatabasePath!;
        using var reading = new SemaphoreSlim(0);
        using var added = new SemaphoreSlim(0);
        recorder.LanesReadForTests = () =>
        {
            recorder.LanesReadForTests = null;
            reading.Release();
            added.Wait(TimeSpan.FromSeconds(10));
        };
        // This thread's lane reaches its threshold and wakes the writer; while the writer reads it, ten more arrive on
        // the same thread (blocking waits keep the lane's owner).
        for (var i = 0; i < FlightRecorder.LaneWakeEvents; i++) Finish(recorder, $"t{i}", TimeSpan.FromMilliseconds(1), offset: i);
        Assert.True(reading.Wait(TimeSpan.FromSeconds(10)));
        for (var i = 0; i < 10; i++) Finish(recorder, $"t{FlightRecorder.LaneWakeEvents + i}", TimeSpan.FromMilliseconds(1), offset: FlightRecorder.LaneWakeEvents + i);
        added.Release();

        long Stored() => Query(database, "SELECT count(*), 0, 0 FROM events WHERE kind = 'task_finished'")[0].Item1;
        for (var wait = 0; wait < 100 && Stored() < FlightRecorder.LaneWakeEvents; wait++) await Task.Delay(100);
        await Task.Delay(500);
        // The ten wait for the lane's next threshold or the flush interval, not a round of their own at once (which
        // would be a transaction for a handful of events, over and over on a busy worker).
        Assert.Equal(FlightRecorder.LaneWakeEvents, Stored());
        await recorder.DisposeAsync();
        Assert.Equal(FlightRecorder.LaneWakeEvents + 10, Stored());
    }

    [Fact]
    public async Task A_dead_letter_of_the_source_messages_own_failure_has_no_sink()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir });
        recorder.Start();
        // What an Arrange that threw dead-letters: the messages, no sink (its sink read "/" on the page and in the file).
        recorder.DeadLettered(new global::Drakkar.Sinks.Dlq.DeadLetter("", "", "Arrange failed", [], 1, "t", 0, [Message(7)], DateTimeOffset.UtcNow));
        var shown = Assert.Single(recorder.RecentDeadLetters(10));
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();

        Assert.Null(shown.Sink);
        Assert.Equal(["dlq - Arrange failed"], QueryText(database, "SELECT kind || ' ' || coalesce(sink, '-') || ' ' || detail FROM events"));
    }

    [Fact]
    public async Task Every_kind_reads_back_through_the_events_view_with_the_columns_it_sets()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir, OutputMinDurationMs = 100 });
        recorder.Start();
        var task = new ExecutorTask("broken") { SourceOffsets = [7] };
        recorder.TaskFinished(task, 5, 2, ExecutorOutcome.Failure(
            new ExecutorError(task, ExecutorFailure.NonZeroExit, 3, "it broke\n", null, 42) { Attempt = 2, Duration = TimeSpan.FromMilliseconds(4) }));
        recorder.Delivered("kafka", "results", 12, TimeSpan.FromMilliseconds(2.5));
        recorder.DeliveryFailed("postgres", "main", 4, "connection refused");
        recorder.Committed("t", 3, 99);
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();
        Assert.Equal(
            [
                "task_failed||5|7|broken|2||3|4.0||task broken exited with code 3||it broke\n",
                "delivered||||||kafka/results||2.5|12|||",
                "delivery_failed||||||postgres/main|||4|connection refused||",
                "committed|t|3|99|||||||||",
            ],
            QueryText(database, """
                SELECT concat_ws('|', kind, coalesce(topic, ''), coalesce(partition, ''), coalesce(offset, ''), coalesce(task_id, ''),
                    coalesce(attempt, ''), coalesce(sink, ''), coalesce(exit_code, ''), coalesce(duration_ms, ''), coalesce(count, ''),
                    coalesce(detail, ''), coalesce(stdout, ''), coalesce(stderr, '')) FROM events ORDER BY seq
                """));
    }

    [Fact]
    public async Task Events_stored_in_short_form_read_back_with_their_kind_names_sequence_and_times()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir });
        recorder.Start();
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        recorder.Rebalanced("assign", [0, 1]);
        recorder.Rebalanced("revoke", [1]);
        recorder.Rebalanced("lost", [0]);
        recorder.Rebalanced("paused", [2]);
        recorder.MessageConsumed(Message(5));
        recorder.DeadLettered(new global::Drakkar.Sinks.Dlq.DeadLetter("http", "api", "refused", [], 1, "t", 0, [], DateTimeOffset.UtcNow));
        recorder.OutageStarted("redis", "cache");
        recorder.OutageEnded("redis", "cache", TimeSpan.FromSeconds(30), back: true, "");
        recorder.OutageEnded("http", "api", TimeSpan.FromSeconds(2), back: false, "the worker is stopping");
        var after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();

        Assert.Equal(["1 assigned|||0,1", "2 revoked|||1", "3 lost|||0", "4 paused|||2", "5 dlq|http/api||refused",
                "6 outage_started|redis/cache||holding payloads (on_outage: pause); consumption paused",
                "7 outage_ended|redis/cache|30000.0|back: every held payload delivered",
                "8 outage_ended|http/api|2000.0|held payloads let go uncommitted: the worker is stopping", "9 consumed|||"],
            QueryText(database, "SELECT seq || ' ' || concat_ws('|', kind, coalesce(sink, ''), coalesce(duration_ms, ''), coalesce(detail, '')) FROM events ORDER BY seq"));
        var times = Query(database, "SELECT min(at_ms), max(at_ms), count(*) FROM events");
        Assert.InRange(times[0].Item1, before, after);
        Assert.InRange(times[0].Item2, before, after);
        // Known kinds are stored as their codes, an unknown one by name; seq and time as offsets from the pack's.
        Assert.Equal(["[0,0,8,"], QueryText(database, "SELECT substr(events_json, 2, 7) FROM event_packs ORDER BY id LIMIT 1"));
        Assert.Contains("\"paused\"", QueryText(database, "SELECT events_json FROM event_packs")[0]);
    }

    [Fact]
    public async Task Text_with_quotes_backslashes_control_and_non_ascii_characters_reads_back_unchanged()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir, OutputMinDurationMs = 0 });
        recorder.Start();
        string[] texts =
        [
            "plain",
            "a \"quoted\" C:\\path\\",
            "lines\nand\ttabs\r\n\u0001\u001f\b\f end",
            "héllo wörld — 日本語 🚀",
            "\"\\\u0000",
            "",
        ];
        foreach (var text in texts)
        {
            var task = new ExecutorTask("id " + text) { SourceOffsets = [1] };
            recorder.TaskFinished(task, 0, 1, ExecutorOutcome.Success(new ExecutorResult(task, 0, text, "err " + text, TimeSpan.FromMilliseconds(1), 1)));
            recorder.DeliveryFailed("http", "api", 1, "detail " + text);
        }
        // In memory too: ASCII ids are kept in the event, the others referenced.
        Assert.Equal(texts.Reverse().Select(t => "id " + t), recorder.RecentTasks(10).Select(e => e.TaskId));
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();

        Assert.Equal(texts.Select(t => $"id {t}|{t}|err {t}"),
            QueryText(database, "SELECT task_id || '|' || stdout || '|' || stderr FROM events WHERE kind = 'task_finished' ORDER BY seq"));
        Assert.Equal(texts.Select(t => "detail " + t), QueryText(database, "SELECT detail FROM events WHERE kind = 'delivery_failed' ORDER BY seq"));
        // Every pack is valid JSON to SQLite.
        Assert.Equal(["1"], QueryText(database, "SELECT cast(min(json_valid(events_json)) AS TEXT) FROM event_packs"));
    }

    [Fact]
    public async Task The_recorder_keeps_no_task_id_string_alive_yet_reads_and_stores_every_id_back()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir });
        recorder.Start();
        var longId = "a-task-prefix-longer-than-the-inline-copy-" + new string('x', FlightEvent.InlineIdChars);
        var (shortId, shortIdString) = FinishUnreferenced(recorder, "echo-0000000000000001-00000002");
        var (_, longIdString) = FinishUnreferenced(recorder, longId);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        // The thread's lane and the writer's batch hold the short id's characters, not its string (which a worker would
        // otherwise keep alive into generation 2); an id too long to copy is referenced.
        Assert.False(shortIdString.IsAlive);
        Assert.True(longIdString.IsAlive);
        Assert.Equal([longId, shortId], recorder.RecentTasks(10).Select(e => e.TaskId));
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();
        Assert.Equal([shortId, longId], QueryText(database, "SELECT task_id FROM events WHERE kind = 'task_finished' ORDER BY seq"));
    }

    [Fact]
    public void An_event_fits_in_120_bytes_so_that_a_ring_slot_is_two_cache_lines()
    {
        // Each finished task copies one event into its thread's lane, and the writer and the UI copy it again: at 270
        // bytes those copies cost the pipeline more than the database did.
        Assert.InRange(System.Runtime.CompilerServices.Unsafe.SizeOf<FlightEvent>(), 1, 120);
        var e = new FlightEvent(7, DateTimeOffset.UnixEpoch.AddMilliseconds(1234), FlightEvent.TaskFinished)
            { TaskId = "task-0123456789abcdef-01234567", Offset = 0, Attempt = 1, ExitCode = 0, DurationMs = 0.25 };
        Assert.Equal("7 1234 task_finished task-0123456789abcdef-01234567 0 1 0 0.25 |||||",
            string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{e.Seq} {e.AtUnixMs} {e.Kind} {e.TaskId} {e.Offset} {e.Attempt} {e.ExitCode} {e.DurationMs} {e.Topic}|{e.Partition}|{e.Count}|{e.Detail}|{e.Sink}|{e.Stdout}"));
        // The texts live in an object of their own; a copy with another text leaves the original's alone.
        var failed = e with { Detail = "boom" };
        var withOutput = failed with { Stdout = "out" };
        Assert.Equal(("boom", null, "boom", "out"), (failed.Detail, failed.Stdout, withOutput.Detail, withOutput.Stdout));
    }

    [Fact]
    public void Once_its_lane_is_full_a_thread_records_finished_tasks_without_allocating()
    {
        // Memory only (db_dir empty): what the pipeline thread pays per finished task for the UI's recent list.
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = "" });
        var outcomes = Enumerable.Range(0, 5000).Select(i =>
        {
            var task = new ExecutorTask($"t{i}") { SourceOffsets = [i] };
            return (task, ExecutorOutcome.Success(new ExecutorResult(task, 0, "", "", TimeSpan.FromMilliseconds(1), 42)));
        }).ToList();
        // Filling the lane makes its chunks once (no array is outgrown and copied).
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var pass = 0; pass < 3; pass++)
            foreach (var (task, outcome) in outcomes) recorder.TaskFinished(task, 0, 1, outcome);
        var filling = GC.GetAllocatedBytesForCurrentThread() - before;
        var capacity = recorder.Lanes.Single().Capacity;
        Assert.True(capacity < 15_000, $"a lane of {capacity}");
        Assert.InRange(filling, 1, capacity * System.Runtime.CompilerServices.Unsafe.SizeOf<FlightEvent>() + 64 * 1024);

        before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var (task, outcome) in outcomes) recorder.TaskFinished(task, 0, 1, outcome);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < 16 * 1024, $"{allocated} bytes allocated for 5,000 finished tasks");
        Assert.Equal(["t4999", "t4998"], recorder.RecentTasks(2).Select(e => e.TaskId));
    }

    // The id is a fresh string nothing but the recorder could keep (a copy of the text the test compares with).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static (string Id, WeakReference IdString) FinishUnreferenced(FlightRecorder recorder, string id)
    {
        var fresh = new string(id.AsSpan());
        Finish(recorder, fresh, TimeSpan.FromMilliseconds(1));
        return (id, new WeakReference(fresh));
    }

    [Fact]
    public void The_recent_ring_keeps_the_newest_items_newest_first_as_it_grows_and_wraps()
    {
        var ring = new RecentRing<int>(100);
        for (var i = 0; i < 70; i++) ring.Add(i);
        Assert.Equal(Enumerable.Range(0, 70).Reverse(), ring.Newest(1000));
        for (var i = 70; i < 250; i++) ring.Add(i);
        Assert.Equal(Enumerable.Range(150, 100).Reverse(), ring.Newest(1000));
        Assert.Equal([248, 246, 244], ring.Newest(3, i => i % 2 == 0));
    }

    [Fact]
    public async Task The_recent_ring_read_while_threads_add_returns_only_whole_items_newest_first()
    {
        var ring = new RecentRing<Pair>(100);
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            for (long i = 0; i < 200_000; i++) ring.Add(new Pair(w * 1_000_000 + i));
        })).ToArray();
        var reads = 0;
        while (!writers.All(t => t.IsCompleted))
        {
            var items = ring.Newest(100);
            // Each item's two halves were written together: a torn copy would break the pair.
            Assert.All(items, p => Assert.Equal(~p.Value, p.Check));
            // Newest first: a writer's own items come out in decreasing order.
            foreach (var writer in items.GroupBy(p => p.Value / 1_000_000))
                Assert.Equal(writer.Select(p => p.Value).OrderDescending(), writer.Select(p => p.Value));
            reads++;
        }
        await Task.WhenAll(writers);
        var last = ring.Newest(1000);
        Assert.Equal(100, last.Count);
        Assert.Equal(100, last.Select(p => p.Value).Distinct().Count());
        Assert.True(reads > 0);
    }

    [Fact]
    public async Task Events_recorded_from_many_threads_at_once_are_all_stored_once_each_pack_in_seq_order()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir, RetentionMaxEvents = 1_000_000 });
        recorder.Start();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < 2_000; i++) Finish(recorder, $"w{w}-{i}", TimeSpan.FromMilliseconds(1), offset: w * 10_000 + i);
        })));
        var database = recorder.DatabasePath!;
        await recorder.DisposeAsync();

        Assert.Equal(0, recorder.Dropped);
        Assert.Equal([(16_000L, 16_000L, 0L)], Query(database, "SELECT count(*), count(DISTINCT task_id), 0 FROM events WHERE kind = 'task_finished'"));
        // Every event once, and each pack's elements ascending. Across packs the order is the writer's: an event whose
        // thread was descheduled between taking its seq and adding it to its lane goes into the next pack.
        var rows = Query(database, "SELECT p.id, p.base_seq + json_extract(e.value, '$[0]'), e.key FROM event_packs p, json_each(p.events_json) e ORDER BY p.id, e.key");
        Assert.Equal(rows.Count, rows.Select(r => r.Item2).Distinct().Count());
        foreach (var pack in rows.GroupBy(r => r.Item1))
            Assert.Equal(pack.Select(r => r.Item2).Order(), pack.Select(r => r.Item2));
    }

    [Fact]
    public async Task The_writer_and_what_it_starts_run_at_the_pipelines_priority()
    {
        var recorder = NewRecorder(new DebugConfig { Enabled = true, DbDir = _dir, FlushIntervalSeconds = 1 });
        var seen = new TaskCompletionSource<(string Name, string Nice)>(TaskCreationOptions.RunContinuationsAsynchronously);
        recorder.LanesReadForTests = () =>
        {
            recorder.LanesReadForTests = null;
            // On the writer's thread: a collection its allocations start runs here while every managed thread waits, and
            // may start the runtime's background GC thread, which inherits this thread's priority.
            GC.Collect(2, GCCollectionMode.Forced, blocking: false);
            seen.TrySetResult((File.ReadAllText("/proc/thread-self/comm").Trim(), Nice(File.ReadAllText("/proc/thread-self/stat"))));
        };
        recorder.Start();
        Finish(recorder, "t0", TimeSpan.FromMilliseconds(1));
        // The writer's first round (within flush_interval_seconds) reads the lanes.
        var writer = await seen.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await recorder.DisposeAsync();
        // /proc/.../comm is the thread's name (15 characters), field 19 of .../stat its nice value.
        Assert.Equal(("drakkar-recorde", "0"), writer);
        Assert.Equal("0", Nice(File.ReadAllText("/proc/thread-self/stat")));
        // A thread may end between being listed and being read (the thread pool retires idle workers): skipped.
        var lowered = Directory.EnumerateDirectories("/proc/self/task")
            .Select(task => (Name: ReadOrNull(Path.Combine(task, "comm"))?.Trim(), Stat: ReadOrNull(Path.Combine(task, "stat"))))
            .Where(t => t.Name is not null && t.Stat is not null && Nice(t.Stat) != "0")
            .ToList();
        Assert.Empty(lowered);

        static string Nice(string stat) => stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[16];
        static string? ReadOrNull(string path)
        {
            try { return File.ReadAllText(path); }
            catch (IOException) { return null; }
        }
    }

    private readonly record struct Pair(long Value)
    {
        public long Check { get; } = ~Value;
    }

    [Fact]
    public void Retention_keeps_exactly_the_newest_events_and_none_older_than_the_limit_across_packs()
    {
        var now = DateTimeOffset.UtcNow;
        using var store = new EventStore(_dir, "w1");
        store.Open(now);
        var seq = 0L;
        // Two and a half packs, then a limit that cuts the middle of the first pack left.
        store.Append(Tasks(2 * EventStore.PackSize + EventStore.PackSize / 2, now), now.AddHours(-1), maxEvents: int.MaxValue);
        store.Append(Tasks(10, now), now.AddHours(-1), maxEvents: EventStore.PackSize + 100);
        Assert.Equal([(EventStore.PackSize + 100L, seq - EventStore.PackSize - 99, seq)], Query(store.Path!, "SELECT count(*), min(seq), max(seq) FROM events"));

        // Events older than the time limit are gone too, also where one pack holds old and recent ones.
        var old = Tasks(5, now);
        var recent = Tasks(3, now.AddHours(2));
        store.Append([.. old, .. recent], now.AddHours(1), maxEvents: int.MaxValue);
        Assert.Equal([(3L, seq - 2, seq)], Query(store.Path!, "SELECT count(*), min(seq), max(seq) FROM events"));
        Assert.Equal(["task_finished t1 0.5"], QueryText(store.Path!, "SELECT kind || ' ' || task_id || ' ' || duration_ms FROM events WHERE seq = " + (seq - 1)));

        // Opened again within the same second, the store starts a file of its own (never appends to one it finds at
        // the name) and decides retention from that file alone: the earlier file keeps its 3 events.
        var earlier = store.Path!;
        store.Open(now);
        Assert.NotEqual(earlier, store.Path);
        store.Append(Tasks(4, now.AddHours(2)), now.AddHours(1), maxEvents: 5);
        Assert.Equal([(4L, seq - 3, seq)], Query(store.Path!, "SELECT count(*), min(seq), max(seq) FROM events"));
        Assert.Equal([(3L, seq - 6, seq - 4)], Query(earlier, "SELECT count(*), min(seq), max(seq) FROM events"));

        List<FlightEvent> Tasks(int count, DateTimeOffset at) =>
            [.. Enumerable.Range(0, count).Select(i => new FlightEvent(++seq, at, FlightEvent.TaskFinished) { TaskId = $"t{i}", DurationMs = 0.5, ExitCode = 0 })];
    }

    [Fact]
    public void A_pack_whose_kept_events_are_all_past_the_time_limit_is_deleted_and_the_new_events_are_stored()
    {
        var now = DateTimeOffset.UtcNow;
        using var store = new EventStore(_dir, "w1");
        store.Open(now);
        // The pack's newest event is its first, which the event limit hides; the four it keeps are older.
        store.Append([Task(1, now.AddHours(2)), Task(2, now), Task(3, now), Task(4, now), Task(5, now)], now.AddHours(-1), maxEvents: 4);
        Assert.Equal([(4L, 2L, 5L)], Query(store.Path!, "SELECT count(*), min(seq), max(seq) FROM events"));

        // A time limit past all four: none of them is kept, and the flush that applies it still stores its own event.
        store.Append([Task(6, now.AddHours(3))], now.AddHours(1), maxEvents: int.MaxValue);
        Assert.Equal([(1L, 6L, 6L)], Query(store.Path!, "SELECT count(*), min(seq), max(seq) FROM events"));

        static FlightEvent Task(long seq, DateTimeOffset at) => new(seq, at, FlightEvent.TaskFinished) { TaskId = $"t{seq}", DurationMs = 1 };
    }

    private FlightRecorder NewRecorder(DebugConfig config) =>
        new(config, ("w1", "c1", "", "{}", "debug: {}"), () => "{}", _metrics, NullLogger.Instance);

    /// <summary>
    /// Starts the writer; while its first round has read the lanes in place and not yet checked them, the owner of
    /// <paramref name="lane"/> adds <paramref name="count"/> task events (offsets from <paramref name="fromOffset"/>).
    /// Returns the database once the writer has moved past everything in the lane (the events added meanwhile are
    /// stored by the next round; at most 20 s) and the recorder is disposed.
    /// </summary>
    private static async Task<string> StoreWhileOvertaken(FlightRecorder recorder, EventLane lane, int fromOffset, int count)
    {
        var overtaken = false;
        recorder.LanesReadForTests = () =>
        {
            recorder.LanesReadForTests = null;
            for (var i = fromOffset; i < fromOffset + count; i++)
                lane.Add(new FlightEvent(100_000 + i, DateTimeOffset.UtcNow, FlightEvent.TaskFinished) { TaskId = $"t{i}", Attempt = 1, Offset = i, DurationMs = 1 });
            overtaken = true;
        };
        recorder.Start();
        var database = recorder.DatabasePath!;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (lane.Stored < lane.Written && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(lane.Written, lane.Stored);
        await recorder.DisposeAsync();
        Assert.True(overtaken);
        return database;
    }

    private static void Finish(FlightRecorder recorder, string id, TimeSpan duration, long offset = 1)
    {
        var task = new ExecutorTask(id) { SourceOffsets = [offset] };
        recorder.TaskFinished(task, 0, 1, ExecutorOutcome.Success(new ExecutorResult(task, 0, $"out of {id}\n", "", duration, 42)));
    }

    private static SourceMessage Message(long offset) => new() { Topic = "t", Partition = 0, Offset = offset };

    private static List<(long, long, long)> Query(string database, string sql)
    {
        using var db = new SqliteConnection($"Data Source={database};Mode=ReadOnly");
        db.Open();
        using var command = db.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<(long, long, long)>();
        while (reader.Read()) rows.Add((reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2)));
        return rows;
    }

    private static List<string> QueryText(string database, string sql)
    {
        using var db = new SqliteConnection($"Data Source={database};Mode=ReadOnly");
        db.Open();
        using var command = db.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read()) rows.Add(reader.GetString(0));
        return rows;
    }
}
