using System.Text;
using Drakkar.Execution;
using static Drakkar.Runtime.Tests.Execution.ProcessTestSupport;

namespace Drakkar.Runtime.Tests.Execution;

/// <summary>E2–E7 against real child processes.</summary>
public sealed class ExecutorProcessTests
{
    private static async Task<ExecutorResult> Succeeds(ExecutorPool pool, ExecutorTask task)
    {
        var outcome = await pool.ExecuteAsync(task, 0);
        Assert.True(outcome.Succeeded, outcome.ToString());
        return outcome.Result;
    }

    private static async Task<ExecutorError> Fails(ExecutorPool pool, ExecutorTask task, int attempt = 1)
    {
        var outcome = await pool.ExecuteAsync(task, 0, attempt);
        Assert.False(outcome.Succeeded, "the task unexpectedly succeeded");
        return outcome.Error;
    }

    [Fact]
    public async Task Arguments_reach_the_binary_verbatim_without_a_shell()
    {
        await using var pool = Pool(Config());
        var result = await Succeeds(pool, new ExecutorTask("echo") { BinaryPath = "/bin/echo", Args = ["a  b", "$HOME", "*", "'q'"] });

        Assert.Equal("a  b $HOME * 'q'\n", result.Stdout);
        Assert.Equal(0, result.ExitCode);
        Assert.NotNull(result.Pid);
        Assert.True(result.Duration > TimeSpan.Zero);
    }

    [Fact]
    public async Task Stdout_and_stderr_are_captured_separately()
    {
        await using var pool = Pool(Config());
        var result = await Succeeds(pool, Shell("echo out; echo err >&2; echo more"));

        Assert.Equal("out\nmore\n", result.Stdout);
        Assert.Equal("err\n", result.Stderr);
        Assert.False(result.StdoutTruncated);
        Assert.False(result.StderrTruncated);
    }

    [Fact]
    public async Task Binary_name_without_a_slash_is_found_on_path()
    {
        await using var pool = Pool(Config());
        var result = await Succeeds(pool, new ExecutorTask("path") { BinaryPath = "echo", Args = ["found"] });

        Assert.Equal("found\n", result.Stdout);
    }

    [Fact]
    public async Task Stdin_is_written_as_utf8_then_closed()
    {
        await using var pool = Pool(Config());
        var result = await Succeeds(pool, new ExecutorTask("cat") { BinaryPath = "/bin/cat", Stdin = "hello\nwörld ✓" });

        Assert.Equal("hello\nwörld ✓", result.Stdout);
    }

    [Fact]
    public async Task Large_stdin_and_large_output_flow_concurrently_without_deadlock()
    {
        await using var pool = Pool(Config(maxOutputBytes: 4 << 20));
        var input = new string('x', 2 << 20);
        var result = await Succeeds(pool, new ExecutorTask("cat") { BinaryPath = "/bin/cat", Stdin = input });

        Assert.Equal(input.Length, result.Stdout.Length);
    }

    [Fact]
    public async Task Without_stdin_the_child_reads_an_empty_stdin_not_the_workers()
    {
        await using var pool = Pool(Config());
        var cat = await Succeeds(pool, new ExecutorTask("cat") { BinaryPath = "/bin/cat" });
        var source = await Succeeds(pool, Shell("readlink /proc/self/fd/0"));

        Assert.Equal("", cat.Stdout);
        Assert.Equal("/dev/null\n", source.Stdout);
    }

    [Fact]
    public async Task Child_runs_in_its_own_session_and_process_group()
    {
        await using var pool = Pool(Config());
        var result = await Succeeds(pool, Shell("ps -o pid=,pgid=,sid= -p $$"));

        var ids = result.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        Assert.Equal(result.Pid, ids[0]);
        Assert.Equal(ids[0], ids[1]);
        Assert.Equal(ids[0], ids[2]);
    }

    [Fact]
    public async Task Non_zero_exit_is_an_error_with_exit_code_stderr_and_attempt()
    {
        await using var pool = Pool(Config());
        var error = await Fails(pool, Shell("echo partial; echo boom >&2; exit 3"), attempt: 2);

        Assert.Equal(ExecutorFailure.NonZeroExit, error.Failure);
        Assert.Equal(3, error.ExitCode);
        Assert.Equal("boom\n", error.Stderr);
        Assert.Equal(2, error.Attempt);
        Assert.NotNull(error.Pid);
    }

    [Fact]
    public async Task Death_by_signal_reports_128_plus_the_signal()
    {
        await using var pool = Pool(Config());
        var error = await Fails(pool, Shell("kill -9 $$"));

        Assert.Equal(137, error.ExitCode);
    }

    [Fact]
    public async Task Timeout_kills_the_whole_process_group_including_grandchildren()
    {
        using var scratch = new ScratchDirectory();
        await using var pool = Pool(Config(timeoutSeconds: 1));
        var pidFile = scratch["grandchild"];

        var run = pool.ExecuteAsync(Shell($"sleep 30 & echo $! > {pidFile}; echo waiting >&2; wait"), 0).AsTask();
        var grandchild = await ReadPidFile(pidFile);
        Assert.True(IsAlive(grandchild));
        var error = (await run).Error;

        Assert.NotNull(error);
        Assert.Equal(ExecutorFailure.Timeout, error.Failure);
        Assert.Null(error.ExitCode);
        Assert.Equal("waiting\n", error.Stderr);
        Assert.Contains("timed out", error.Message);
        // The timeout timer may fire a few ms before the clock that measures the run says a second has passed; above,
        // the bound is generous for a busy machine yet far below the child's 30 s.
        Assert.InRange(error.Duration.TotalSeconds, 0.95, 10);
        // The direct child was reaped by the pool: not even a zombie is left of it.
        Assert.False(Exists(error.Pid!.Value), $"child {error.Pid} still exists");
        // The grandchild was re-parented to init when its parent died; killed, it is at most an unreaped zombie
        // there (this machine's pid 1 does not reap orphans).
        await Until(() => !IsAlive(grandchild), $"grandchild {grandchild} is dead");
    }

    [Fact]
    public async Task Background_jobs_left_behind_by_a_finished_task_are_killed()
    {
        await using var pool = Pool(Config());
        var result = await Succeeds(pool, Shell("sleep 30 >/dev/null 2>&1 & echo $!"));
        var straggler = int.Parse(result.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture);

        await Until(() => !IsAlive(straggler), $"background job {straggler} is dead");
    }

    [Fact]
    public async Task Output_beyond_max_output_bytes_is_drained_but_truncated()
    {
        await using var pool = Pool(Config(timeoutSeconds: 10, maxOutputBytes: 1000));
        // 5 MB is far beyond a pipe's buffer: were the excess not drained, the child would block until the timeout.
        var result = await Succeeds(pool, Shell("head -c 5000000 /dev/zero | tr '\\0' a; echo tail >&2"));

        Assert.Equal(new string('a', 1000), result.Stdout);
        Assert.True(result.StdoutTruncated);
        Assert.Equal("tail\n", result.Stderr);
        Assert.False(result.StderrTruncated);
        Assert.True(result.Duration < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Truncation_does_not_split_a_multibyte_character()
    {
        await using var pool = Pool(Config(maxOutputBytes: 5));
        var result = await Succeeds(pool, Shell("printf 'abcé€'"));

        Assert.Equal("abcé", result.Stdout);
        Assert.True(result.StdoutTruncated);
    }

    [Fact]
    public async Task Invalid_utf8_is_replaced_not_fatal()
    {
        await using var pool = Pool(Config());
        var result = await Succeeds(pool, Shell("printf 'a\\377\\376b'; printf '\\300' >&2"));

        Assert.Equal("a\uFFFD\uFFFDb", result.Stdout);
        Assert.Equal("\uFFFD", result.Stderr);
    }

    [Fact]
    public async Task Missing_binary_fails_to_spawn_with_a_message_naming_it()
    {
        await using var pool = Pool(Config());
        var error = await Fails(pool, new ExecutorTask("missing") { BinaryPath = "/nonexistent/drakkar-tool" });

        Assert.Equal(ExecutorFailure.SpawnFailed, error.Failure);
        Assert.Null(error.Pid);
        Assert.Contains("/nonexistent/drakkar-tool", error.Message);
        Assert.Contains("No such file", error.Message);
    }

    [Fact]
    public async Task Arguments_too_large_for_the_kernel_fail_to_spawn_naming_the_arguments_not_the_binary()
    {
        await using var pool = Pool(Config());
        var error = await Fails(pool, new ExecutorTask("huge-args") { BinaryPath = "/bin/true", Args = [new string('a', 300_000)] });

        Assert.Equal(ExecutorFailure.SpawnFailed, error.Failure);
        Assert.Contains("Argument list too long", error.Message);
        Assert.Contains("the task's arguments and environment are too large for the kernel", error.Message);
        Assert.DoesNotContain("check that the path exists", error.Message);
    }

    [Fact]
    public async Task Non_executable_file_fails_to_spawn_with_a_message_naming_it()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch["not-executable"];
        await File.WriteAllTextAsync(path, "#!/bin/sh\necho hi\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        await using var pool = Pool(Config());

        var error = await Fails(pool, new ExecutorTask("noexec") { BinaryPath = path });

        Assert.Equal(ExecutorFailure.SpawnFailed, error.Failure);
        Assert.Contains(path, error.Message);
        Assert.Contains("Permission denied", error.Message);
    }

    [Fact]
    public async Task No_binary_anywhere_is_a_no_binary_error()
    {
        var config = Config();
        config.BinaryPath = null;
        await using var pool = Pool(config);

        var error = await Fails(pool, new ExecutorTask("none") { Args = ["x"] });

        Assert.Equal(ExecutorFailure.NoBinary, error.Failure);
        Assert.Contains("executor.binary_path", error.Message);
    }

    [Fact]
    public async Task Task_binary_overrides_the_configured_one()
    {
        var config = Config();
        config.BinaryPath = "/bin/false";
        await using var pool = Pool(config);

        var result = await Succeeds(pool, new ExecutorTask("override") { BinaryPath = "/bin/echo", Args = ["mine"] });

        Assert.Equal("mine\n", result.Stdout);
    }

    [Fact]
    public async Task Environment_inherits_parent_minus_deny_globs_then_config_then_task()
    {
        var config = Config();
        config.Env = new() { ["FROM_CONFIG"] = "c", ["SHARED"] = "config", ["DK_CONFIGURED"] = "kept" };
        var parent = new Dictionary<string, string>
        {
            ["PATH"] = "/usr/bin:/bin",
            ["KEEP_ME"] = "1",
            ["SHARED"] = "parent",
            ["DK_BROKERS"] = "x",
            ["dk_lower"] = "x",
            ["DB_PASSWORD_FILE"] = "x",
            ["GITHUB_TOKEN"] = "x",
            ["API_KEY"] = "x",
            ["KEYBOARD"] = "kept",
            ["pg_dsn"] = "x",
            ["AWS_CREDENTIALS"] = "x",
            ["MY_SECRET_THING"] = "x",
        };
        await using var pool = new ExecutorPool(config, parentEnvironment: parent);

        var result = await Succeeds(pool, new ExecutorTask("env")
        {
            BinaryPath = "/usr/bin/env",
            Env = new() { ["SHARED"] = "task", ["FROM_TASK"] = "t" },
        });

        var seen = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('=', 2))
            .ToDictionary(pair => pair[0], pair => pair[1]);
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["PATH"] = "/usr/bin:/bin",
                ["KEEP_ME"] = "1",
                ["KEYBOARD"] = "kept",
                ["FROM_CONFIG"] = "c",
                ["DK_CONFIGURED"] = "kept",
                ["SHARED"] = "task",
                ["FROM_TASK"] = "t",
            },
            seen);
    }

    [Fact]
    public async Task Secret_named_parent_variables_never_reach_a_child_while_ordinary_ones_do()
    {
        // Default config: no deny globs needed, the secret-name rule the log masker uses decides.
        var secrets = new[]
        {
            "DATABASE_URL", "REDIS_URL", "MONGODB_URI", "AZURE_STORAGE_CONNECTION_STRING", "DB_PASS", "PGPASS", "GITHUB_PAT",
            "BASIC_AUTH", "SSH_PRIVATE_KEY_PATH", "MY_PRIVATE_KEY_PEM", "MYSQL_PWD", "APIKEY", "SENTRY_DSN", "AWS_SECRET_ACCESS_KEY",
        };
        var parent = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin", ["HOME"] = "/home/worker", ["LANG"] = "C.UTF-8", ["KEYBOARD"] = "us" };
        foreach (var name in secrets) parent[name] = "leaked-" + name;
        await using var pool = new ExecutorPool(Config(), parentEnvironment: parent);

        var result = await Succeeds(pool, new ExecutorTask("env") { BinaryPath = "/usr/bin/env" });

        var seen = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split('=', 2)[0]).Order().ToArray();
        Assert.Equal(["HOME", "KEYBOARD", "LANG", "PATH"], seen);
        Assert.DoesNotContain("leaked-", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Environment_without_inheritance_is_config_and_task_only()
    {
        var config = Config();
        config.EnvInheritParent = false;
        config.Env = new() { ["ONLY"] = "config" };
        await using var pool = new ExecutorPool(config, parentEnvironment: new Dictionary<string, string> { ["PARENT"] = "p" });

        var result = await Succeeds(pool, new ExecutorTask("env") { BinaryPath = "/usr/bin/env", Env = new() { ["T"] = "1" } });

        Assert.Equal(["ONLY=config", "T=1"], result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
    }

    [Fact]
    public async Task Worker_environment_is_inherited_by_default()
    {
        await using var pool = Pool(Config());
        var result = await Succeeds(pool, Shell("echo $PATH"));

        Assert.Equal(Environment.GetEnvironmentVariable("PATH") + "\n", result.Stdout);
    }

    [Fact]
    public async Task Precomputed_tasks_skip_the_pool_and_the_process()
    {
        var config = Config();
        config.BinaryPath = null;
        var pool = Pool(config);
        var ok = new ExecutorTask("pre-ok") { Precomputed = new PrecomputedResult("cached", "", 0, TimeSpan.FromMilliseconds(7)) };
        var bad = new ExecutorTask("pre-bad") { Precomputed = new PrecomputedResult("", "nope", 2) };

        var success = pool.ExecuteAsync(ok, 0);
        var failure = pool.ExecuteAsync(bad, 0, attempt: 3);

        Assert.True(success.IsCompletedSuccessfully && failure.IsCompletedSuccessfully, "precomputed outcomes are synchronous");
        Assert.Equal(new ExecutorResult(ok, 0, "cached", "", TimeSpan.FromMilliseconds(7), null), (await success).Result);
        var error = (await failure).Error!;
        Assert.Equal(ExecutorFailure.NonZeroExit, error.Failure);
        Assert.Equal(2, error.ExitCode);
        Assert.Equal("nope", error.Stderr);
        Assert.Equal(3, error.Attempt);
        Assert.Null(error.Pid);
        Assert.Equal(0, pool.ActiveCount);

        await pool.DisposeAsync();
        Assert.True((await pool.ExecuteAsync(ok, 0)).Succeeded);
    }
}
