using System.Collections.Concurrent;
using System.Text;
using Drakkar.Execution;
using Drakkar.Execution.Persistent;
using Drakkar.Observability.Metrics;
using Microsoft.Extensions.Logging;
using static Drakkar.Runtime.Tests.Execution.ProcessTestSupport;

namespace Drakkar.Runtime.Tests.Execution;

/// <summary>
/// E9 (<c>executor.mode: persistent</c>) against the reference children of docs/executor-protocol.md, the C# one
/// (tests/Drakkar.PersistentChild) and the Python one beside it, as real processes.
/// </summary>
public sealed class PersistentExecutorTests
{
    public static TheoryData<string> Children => ["csharp", "python"];

    private static string ChildDirectory()
    {
        var configuration = AppContext.BaseDirectory.Contains("/bin/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        return Path.Combine(RepositoryPaths.Root(), "tests", "Drakkar.PersistentChild", "bin", configuration, "net10.0");
    }

    /// <summary>A persistent-mode config running <paramref name="child"/>; <paramref name="flags"/> go to the C# child's argv.</summary>
    internal static ExecutorConfig Persistent(string child, int maxExecutors = 1, int timeoutSeconds = 10, params string[] flags)
    {
        var directory = ChildDirectory();
        var config = Config(maxExecutors, timeoutSeconds);
        config.Mode = ExecutorMode.Persistent;
        config.RestartBackoffMs = 0;
        config.ReadyTimeoutSeconds = 10;
        if (child == "python")
        {
            // The interpreter itself, not a version manager's shim (a shell script that is slow to start under load).
            config.BinaryPath = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
            config.ProcessArgs = [Path.Combine(directory, "persistent_child.py"), .. flags];
        }
        else
        {
            config.BinaryPath = Path.Combine(directory, "Drakkar.PersistentChild");
            config.ProcessArgs = [.. flags];
        }

        return config;
    }

    /// <summary>drakkar_executor_process_events_total by event, for the events a test expects.</summary>
    private static string ProcessEvents(DrakkarMetrics metrics) => string.Join(", ",
        new[] { "started", "start_failed", "failed", "exited", "recycled" }.Select(e => $"{e}={metrics.ExecutorProcessEvents.Value(e)}"));

    private static ExecutorTask Task(params string[] args) => new(Drakkar.TaskId.New("p")) { Args = args };

    private static async Task<ExecutorResult> Succeeds(ExecutorPool pool, ExecutorTask task)
    {
        var outcome = await pool.ExecuteAsync(task, 0);
        Assert.True(outcome.Succeeded, outcome.Succeeded ? "" : $"{outcome.Error.Message}: {outcome.Error.Exception}");
        return outcome.Result;
    }

    private static async Task<ExecutorError> Fails(ExecutorPool pool, ExecutorTask task)
    {
        var outcome = await pool.ExecuteAsync(task, 0);
        Assert.False(outcome.Succeeded, "the task unexpectedly succeeded");
        return outcome.Error;
    }

    private static async Task<int> PidOf(ExecutorPool pool) => int.Parse((await Succeeds(pool, Task("pid"))).Stdout, System.Globalization.CultureInfo.InvariantCulture);

    [Theory]
    [MemberData(nameof(Children))]
    public async Task Tasks_travel_as_frames_to_one_long_lived_process(string child)
    {
        await using var pool = new ExecutorPool(Persistent(child));
        var echo = await Succeeds(pool, new ExecutorTask("t-echo") { Args = ["echo", "a  b", "\"q\"", "é"], Stdin = "line 1\nline 2\n" });
        var env = await Succeeds(pool, new ExecutorTask("t-env") { Args = ["env", "ONLY_THIS_TASK"], Env = { ["ONLY_THIS_TASK"] = "yes" } });
        var protocol = await Succeeds(pool, Task("env", ExecutorFrames.ProtocolVariable));
        var failed = await Fails(pool, Task("fail", "7"));

        Assert.Equal("a  b \"q\" é\nline 1\nline 2\n", echo.Stdout);
        Assert.Equal("yes", env.Stdout);
        Assert.Equal("1", protocol.Stdout);
        Assert.Equal((ExecutorFailure.NonZeroExit, 7, "failing with 7\n"), (failed.Failure, failed.ExitCode, failed.Stderr));
        Assert.NotNull(echo.Pid);
        Assert.All([env.Pid, protocol.Pid, failed.Pid], pid => Assert.Equal(echo.Pid, pid));
        Assert.Equal(1, pool.PersistentProcessCount);
    }

    [Theory]
    [MemberData(nameof(Children))]
    public async Task Length_prefixed_stdin_reaches_the_child_byte_for_byte(string child)
    {
        await using var pool = new ExecutorPool(Persistent(child));
        const string text = "{\"not\": \"a frame\"}\nline two\r\n\ttabs, quotes \" and ünïcødé 🚢\n";
        var result = await Succeeds(pool, new ExecutorTask("t-cat") { Args = ["cat"], Stdin = text, Framing = TaskFraming.LengthPrefixed });
        var prefixed = await Succeeds(pool, new ExecutorTask("t-how") { Args = ["stdin-framing"], Stdin = text, Framing = TaskFraming.LengthPrefixed });
        var inline = await Succeeds(pool, new ExecutorTask("t-default") { Args = ["stdin-framing"], Stdin = text });

        Assert.Equal(text, result.Stdout);
        Assert.Equal("length-prefixed", prefixed.Stdout);
        Assert.Equal("json-line", inline.Stdout);
    }

    [Theory]
    [MemberData(nameof(Children))]
    public async Task A_crash_mid_task_fails_the_task_and_the_next_task_gets_a_new_process(string child)
    {
        using var metrics = new DrakkarMetrics();
        await using var pool = new ExecutorPool(Persistent(child), metrics: metrics);
        var first = await PidOf(pool);
        var crash = new ExecutorTask("t-crash") { Args = ["crash"] };
        var error = await Fails(pool, crash);
        var second = await PidOf(pool);

        Assert.Equal(ExecutorFailure.NonZeroExit, error.Failure);
        Assert.Equal(3, error.ExitCode);
        Assert.Equal(first, error.Pid);
        Assert.Contains($"(pid {first}) exited with code 3 while running task 't-crash'", error.Exception, StringComparison.Ordinal);
        Assert.Contains("segfault-like crash while handling t-crash", error.Stderr, StringComparison.Ordinal);
        Assert.NotEqual(first, second);
        Assert.False(Exists(first), "the crashed process was not reaped");
        Assert.Equal(1, pool.PersistentProcessCount);
        Assert.Equal("started=2, start_failed=0, failed=1, exited=0, recycled=0", ProcessEvents(metrics));
    }

    [Theory]
    [MemberData(nameof(Children))]
    public async Task A_task_past_the_timeout_kills_its_process_and_fails_as_timed_out(string child)
    {
        await using var pool = new ExecutorPool(Persistent(child, timeoutSeconds: 1));
        var first = await PidOf(pool);
        var error = await Fails(pool, new ExecutorTask("t-hang") { Args = ["hang"] });
        var second = await PidOf(pool);

        Assert.Equal(ExecutorFailure.Timeout, error.Failure);
        Assert.Equal("task t-hang timed out", error.Message);
        Assert.Contains($"(pid {first}) was killed and will be restarted", error.Exception, StringComparison.Ordinal);
        Assert.False(Exists(first), "the hung process is still there");
        Assert.NotEqual(first, second);
    }

    [Theory]
    [MemberData(nameof(Children))]
    public async Task A_process_is_replaced_after_max_tasks_per_process(string child)
    {
        var config = Persistent(child);
        config.MaxTasksPerProcess = 2;
        using var metrics = new DrakkarMetrics();
        await using var pool = new ExecutorPool(config, metrics: metrics);
        var pids = new List<int>();
        for (var i = 0; i < 5; i++)
        {
            pids.Add(await PidOf(pool));
        }

        Assert.Equal(pids[0], pids[1]);
        Assert.Equal(pids[2], pids[3]);
        Assert.Equal(3, pids.Distinct().Count());
        Assert.False(Exists(pids[0]), "the recycled process is still there");
        Assert.Equal(1, pool.PersistentProcessCount);
        Assert.Equal("started=3, start_failed=0, failed=0, exited=0, recycled=2", ProcessEvents(metrics));
    }

    /// <summary>
    /// The task that triggers a recycle gets its result at once, not after the old process has exited (up to the
    /// 5 s exit grace for a child that ignores end-of-file); its slot stays taken until then, so max_executors still
    /// bounds the processes alive.
    /// </summary>
    [Fact]
    public async Task A_recycle_returns_the_tasks_result_at_once_and_frees_the_slot_when_the_old_process_is_gone()
    {
        var config = Persistent("csharp", maxExecutors: 1, flags: "--ignore-eof");
        config.MaxTasksPerProcess = 1;
        var logger = new ListLogger();
        await using var pool = new ExecutorPool(config, logger: logger);
        var first = await PidOf(pool);

        // Returned while the recycled process still lives (it ignores end-of-file and is killed after its grace).
        Assert.True(Exists(first), "the task's result waited for the recycled process to exit");
        Assert.Equal(1, pool.ActiveCount);
        Assert.Equal(1, pool.PersistentProcessCount);

        var second = await PidOf(pool);
        Assert.NotEqual(first, second);
        Assert.Contains(logger.Lines, line => line.Contains($"(pid {first}) did not exit on end-of-file within 5s", StringComparison.Ordinal));
        Assert.False(Exists(first), "the recycled process outlived its grace");
    }

    [Theory]
    [MemberData(nameof(Children))]
    public async Task A_bad_frame_is_a_protocol_error_naming_the_executor_and_the_task(string child)
    {
        var config = Persistent(child);
        await using var pool = new ExecutorPool(config);
        var first = await PidOf(pool);
        var error = await Fails(pool, new ExecutorTask("t-bad") { Args = ["bad-frame"] });

        Assert.Equal(ExecutorFailure.ProtocolError, error.Failure);
        Assert.StartsWith("task t-bad: executor protocol error: ", error.Message, StringComparison.Ordinal);
        Assert.Contains($"executor '{config.BinaryPath}' (pid {first}) wrote an invalid response frame (it is not valid JSON): 'this is not a frame'", error.Exception, StringComparison.Ordinal);
        Assert.False(Exists(first), "the process that broke the protocol is still there");
        Assert.NotEqual(first, await PidOf(pool));
    }

    [Theory]
    [MemberData(nameof(Children))]
    public async Task An_answer_for_an_unknown_task_id_is_a_protocol_error(string child)
    {
        await using var pool = new ExecutorPool(Persistent(child));
        var first = await PidOf(pool);
        var error = await Fails(pool, new ExecutorTask("t-mine") { Args = ["wrong-id"] });

        Assert.Equal(ExecutorFailure.ProtocolError, error.Failure);
        Assert.Contains("answered task 'someone-else' while task 't-mine' was running (an unknown task id)", error.Exception, StringComparison.Ordinal);
        Assert.NotEqual(first, await PidOf(pool));
    }

    [Fact]
    public async Task A_child_that_exits_cleanly_without_answering_is_a_protocol_error()
    {
        await using var pool = new ExecutorPool(Persistent("csharp"));
        var first = await PidOf(pool);
        var error = await Fails(pool, new ExecutorTask("t-quit") { Args = ["exit-quietly"] });

        Assert.Equal(ExecutorFailure.ProtocolError, error.Failure);
        Assert.Contains($"(pid {first}) exited (code 0) without answering task 't-quit'", error.Exception, StringComparison.Ordinal);
        Assert.NotEqual(first, await PidOf(pool));
    }

    [Fact]
    public async Task A_process_that_dies_while_idle_is_replaced_before_the_next_task_is_sent()
    {
        using var metrics = new DrakkarMetrics();
        await using var pool = new ExecutorPool(Persistent("csharp"), metrics: metrics);
        var answered = await Succeeds(pool, Task("answer-then-exit"));
        var first = int.Parse(answered.Stdout, System.Globalization.CultureInfo.InvariantCulture);
        await Until(() => !IsAlive(first), "the process has exited");
        await Until(() => pool.PersistentProcessCount == 0, "drakkar_executor_processes to stop counting the exited process");
        var next = await Succeeds(pool, Task("echo", "fresh"));

        Assert.Equal("fresh\n", next.Stdout);
        Assert.NotEqual(first, next.Pid);
        Assert.False(Exists(first), "the dead process was not reaped");
        Assert.Equal("started=2, start_failed=0, failed=0, exited=1, recycled=0", ProcessEvents(metrics));
    }

    [Fact]
    public async Task A_gigabyte_answer_is_captured_up_to_max_output_bytes_and_the_process_stays_in_step()
    {
        var config = Persistent("csharp", timeoutSeconds: 120);
        config.MaxOutputBytes = 1 << 20;
        await using var pool = new ExecutorPool(config);
        var flood = await Succeeds(pool, Task("flood", "1024"));
        var next = await Succeeds(pool, Task("echo", "still", "here"));

        Assert.True(flood.StdoutTruncated);
        Assert.Equal(1 << 20, flood.Stdout.Length);
        Assert.Equal("done\n", flood.Stderr);
        Assert.Equal("still here\n", next.Stdout);
        Assert.Equal(flood.Pid, next.Pid);
    }

    [Fact]
    public async Task An_answer_line_longer_than_the_frame_limit_is_refused_without_reading_it_all()
    {
        var config = Persistent("csharp");
        config.MaxOutputBytes = 64 * 1024;
        await using var pool = new ExecutorPool(config);
        var error = await Fails(pool, new ExecutorTask("t-flood") { Args = ["flood-line", "64"] });

        Assert.Equal(ExecutorFailure.ProtocolError, error.Failure);
        Assert.Contains($"wrote a frame longer than {PersistentChild.MaxFrameBytes(64 * 1024)} bytes", error.Exception, StringComparison.Ordinal);
        Assert.Equal("ok\n", (await Succeeds(pool, Task("echo", "ok"))).Stdout);
    }

    [Fact]
    public async Task A_child_that_never_prints_its_ready_line_fails_the_task_as_a_spawn_failure()
    {
        var config = Persistent("csharp", 1, 10, "--no-ready");
        config.ReadyTimeoutSeconds = 1;
        using var metrics = new DrakkarMetrics();
        await using var pool = new ExecutorPool(config, metrics: metrics);
        var error = await Fails(pool, new ExecutorTask("t-wait") { Args = ["echo"] });

        Assert.Equal(ExecutorFailure.SpawnFailed, error.Failure);
        Assert.Contains($"executor '{config.BinaryPath}' (pid ", error.Exception, StringComparison.Ordinal);
        Assert.Contains("did not print its ready line within 1s (executor.ready_timeout_seconds)", error.Exception, StringComparison.Ordinal);
        Assert.Equal(0, pool.PersistentProcessCount);
        Assert.Equal("started=0, start_failed=1, failed=0, exited=0, recycled=0", ProcessEvents(metrics));
    }

    [Fact]
    public async Task A_child_that_prints_something_else_first_fails_the_task_as_a_spawn_failure()
    {
        await using var pool = new ExecutorPool(Persistent("csharp", 1, 10, "--bad-ready"));
        var error = await Fails(pool, Task("echo"));

        Assert.Equal(ExecutorFailure.SpawnFailed, error.Failure);
        Assert.Contains("wrote 'hello, I am not a frame' instead of its ready line", error.Exception, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_child_that_exits_at_start_reports_its_exit_code_and_last_stderr_line()
    {
        await using var pool = new ExecutorPool(Persistent("csharp", 1, 10, "--exit-at-start"));
        var error = await Fails(pool, Task("echo"));

        Assert.Equal(ExecutorFailure.SpawnFailed, error.Failure);
        Assert.Contains("exited before printing its ready line (exit code 4); its last stderr line: 'cannot load the model: /models/missing.bin not found'",
            error.Exception, StringComparison.Ordinal);
        // What is known is in the fields too, not only in the text (they were null and empty).
        Assert.Equal("cannot load the model: /models/missing.bin not found", error.Stderr);
        Assert.True(error.Pid > 0, $"pid {error.Pid}");
    }

    [Fact]
    public async Task A_restart_after_a_crash_waits_for_the_backoff()
    {
        var config = Persistent("csharp");
        config.RestartBackoffMs = 1500;
        config.RestartBackoffMaxMs = 1500;
        await using var pool = new ExecutorPool(config);
        await Fails(pool, Task("crash"));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await PidOf(pool);
        var afterCrash = clock.Elapsed;

        Assert.True(afterCrash >= TimeSpan.FromMilliseconds(1400), $"restarted after {afterCrash.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task Crashes_of_processes_that_started_wait_the_first_backoff_each_and_only_failed_starts_double_it()
    {
        // Poison inputs: each kills a process that had started fine. Every restart waits restart_backoff_ms, not
        // 50, 100, 200… (which stalled every other task of the binary for up to restart_backoff_max_ms).
        var crashes = new ListLogger();
        var config = Persistent("csharp");
        (config.RestartBackoffMs, config.RestartBackoffMaxMs) = (50, 10_000);
        await using (var pool = new ExecutorPool(config, logger: crashes))
        {
            for (var i = 0; i < 3; i++) await Fails(pool, Task("crash"));
            await Succeeds(pool, Task("echo", "after"));
        }
        var waits = crashes.Lines.Where(l => l.Contains("in a row; restarting it in", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, waits.Count);
        Assert.All(waits, l => Assert.EndsWith("failed 1 time(s) in a row; restarting it in 50 ms", l, StringComparison.Ordinal));

        // A binary that never gets ready backs off further each time.
        var failedStarts = new ListLogger();
        var broken = Persistent("csharp", flags: "--exit-at-start");
        (broken.RestartBackoffMs, broken.RestartBackoffMaxMs) = (50, 10_000);
        await using (var pool = new ExecutorPool(broken, logger: failedStarts))
        {
            for (var i = 0; i < 4; i++) Assert.Equal(ExecutorFailure.SpawnFailed, (await Fails(pool, Task("echo", "x"))).Failure);
        }
        Assert.Equal(["restarting it in 50 ms", "restarting it in 100 ms", "restarting it in 200 ms"],
            failedStarts.Lines.Where(l => l.Contains("in a row; restarting it in", StringComparison.Ordinal)).Select(l => l[l.IndexOf("restarting", StringComparison.Ordinal)..]));
    }

    [Fact]
    public void Restart_backoff_doubles_per_failure_in_a_row_up_to_the_cap()
    {
        var initial = TimeSpan.FromMilliseconds(100);
        var max = TimeSpan.FromMilliseconds(1000);
        double[] delays = [.. Enumerable.Range(0, 7).Select(n => PersistentProcesses.RestartDelay(n, initial, max).TotalMilliseconds)];

        Assert.Equal([0, 100, 200, 400, 800, 1000, 1000], delays);
        Assert.Equal(max, PersistentProcesses.RestartDelay(10_000, initial, max));
    }

    [Fact]
    public async Task A_process_over_max_rss_mb_is_replaced_after_its_task()
    {
        var config = Persistent("csharp");
        config.MaxRssMb = 150;
        await using var pool = new ExecutorPool(config);
        var first = await PidOf(pool);
        var grown = await Succeeds(pool, Task("rss", "200"));
        var second = await PidOf(pool);

        Assert.Equal(first, grown.Pid);
        Assert.NotEqual(first, second);
        Assert.Equal(second, await PidOf(pool));
    }

    [Theory]
    [MemberData(nameof(Children))]
    public async Task Shutdown_closes_stdin_and_idle_processes_exit_on_their_own(string child)
    {
        using var scratch = new ScratchDirectory();
        var config = Persistent(child);
        config.Env["CHILD_GOODBYE_FILE"] = scratch["goodbye"];
        var pool = new ExecutorPool(config);
        var pid = await PidOf(pool);
        await pool.DisposeAsync();

        Assert.Equal($"{pid}\n", File.ReadAllText(scratch["goodbye"]));
        Assert.False(Exists(pid), "the process was not reaped at shutdown");
        Assert.Equal(0, pool.PersistentProcessCount);
    }

    /// <summary>A stop out of time ends the processes at once (it waited out their 5 s grace, past the worker's exit).</summary>
    [Fact]
    public async Task Ending_now_kills_an_idle_process_that_ignores_end_of_file_without_waiting_out_its_grace()
    {
        var logger = new ListLogger();
        var config = Persistent("csharp", flags: "--ignore-eof");
        var pool = new ExecutorPool(config, logger: logger);
        var pid = await PidOf(pool);
        var disposing = pool.DisposeAsync().AsTask();
        await System.Threading.Tasks.Task.Delay(500);
        Assert.True(Exists(pid), "the process waits out its exit grace");

        await pool.EndNowAsync().WaitAsync(TimeSpan.FromSeconds(3));

        Assert.False(Exists(pid), "the process outlived EndNowAsync");
        await disposing.WaitAsync(TimeSpan.FromSeconds(3));
        Assert.Equal(0, pool.PersistentProcessCount);
        Assert.Contains($"Executor process {config.BinaryPath} (pid {pid}) did not exit on end-of-file before the worker's stop ran out of " +
            "drain_timeout_seconds; it was killed with its group (a persistent child should exit when its stdin ends)", logger.Lines);
    }

    [Fact]
    public async Task Slots_bound_the_processes_and_run_tasks_side_by_side()
    {
        var config = Persistent("csharp", maxExecutors: 2);
        await using var pool = new ExecutorPool(config);
        var results = await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 40).Select(i => pool.ExecuteAsync(Task("echo", $"n{i}"), i).AsTask()));

        Assert.All(results, r => Assert.True(r.Succeeded));
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"n{i}\n"), results.Select(r => r.Result!.Stdout));
        Assert.InRange(results.Select(r => r.Result!.Pid).Distinct().Count(), 1, 2);
        Assert.InRange(pool.PersistentProcessCount, 1, 2);
    }

    [Fact]
    public async Task The_process_own_stderr_is_logged_with_its_name()
    {
        var logger = new ListLogger();
        var config = Persistent("csharp");
        await using var pool = new ExecutorPool(config, logger: logger);
        var result = await Succeeds(pool, Task("log", "loading dictionary 3/7"));
        await Until(() => logger.Lines.Any(l => l.Contains("loading dictionary 3/7", StringComparison.Ordinal)), "the stderr line is logged");

        Assert.Equal("task stderr\n", result.Stderr);
        Assert.Contains(logger.Lines, l => l == $"Executor process {config.BinaryPath} (pid {result.Pid}) stderr: loading dictionary 3/7");
    }

    [Fact]
    public async Task Cancelling_a_running_task_kills_its_process()
    {
        await using var pool = new ExecutorPool(Persistent("csharp"));
        var pid = await PidOf(pool);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await pool.ExecuteAsync(Task("hang"), 0, 1, cancel.Token));
        Assert.False(Exists(pid), "the cancelled task's process is still there");
        Assert.Equal(0, pool.PersistentProcessCount);
    }

    private sealed class ListLogger : ILogger<ExecutorPool>
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue(formatter(state, exception));
    }
}
