using Drakkar.Execution;

namespace Drakkar.Runtime.Tests.Execution;

/// <summary>How the pool turns a runner's report into outcomes, with a stand-in runner (no processes).</summary>
public sealed class ExecutorPoolMappingTests
{
    private sealed class ScriptedRunner(Func<ProcessSpec, ProcessRun> answer) : IProcessRunner
    {
        public List<ProcessSpec> Specs { get; } = [];

        public Task<ProcessRun> RunAsync(ProcessSpec spec, CancellationToken cancellationToken)
        {
            Specs.Add(spec);
            return Task.FromResult(answer(spec));
        }
    }

    private static ExecutorConfig Config() => new()
    {
        BinaryPath = "/usr/bin/tool",
        TaskTimeoutSeconds = 7,
        MaxOutputBytes = 123,
        Env = new() { ["C"] = "config" },
    };

    [Fact]
    public async Task The_runner_gets_the_resolved_binary_args_stdin_environment_and_limits()
    {
        var runner = new ScriptedRunner(_ => new ProcessRun(ProcessRunStatus.Exited, 42, 0, "out", "err", TimeSpan.FromSeconds(1)) { StdoutTruncated = true });
        await using var pool = new ExecutorPool(Config(), runner, parentEnvironment: new Dictionary<string, string> { ["P"] = "parent" });
        var task = new ExecutorTask("t") { Args = ["-x"], Stdin = "in", Env = new() { ["T"] = "task" } };

        var outcome = await pool.ExecuteAsync(task, 0);

        var spec = Assert.Single(runner.Specs);
        Assert.Equal(("/usr/bin/tool", "-x", "in", TimeSpan.FromSeconds(7), 123), (spec.FileName, spec.Args[0], spec.Stdin, spec.Timeout, spec.MaxOutputBytes));
        Assert.Equal(new Dictionary<string, string> { ["P"] = "parent", ["C"] = "config", ["T"] = "task" }, spec.Environment);
        Assert.Equal(new ExecutorResult(task, 0, "out", "err", TimeSpan.FromSeconds(1), 42) { StdoutTruncated = true }, outcome.Result);
    }

    [Theory]
    [InlineData("Exited", 9, ExecutorFailure.NonZeroExit)]
    [InlineData("TimedOut", null, ExecutorFailure.Timeout)]
    [InlineData("SpawnFailed", null, ExecutorFailure.SpawnFailed)]
    public async Task Failures_carry_kind_exit_code_attempt_and_duration(string statusName, int? exitCode, ExecutorFailure failure)
    {
        var status = Enum.Parse<ProcessRunStatus>(statusName);
        var runner = new ScriptedRunner(_ => new ProcessRun(status, 5, exitCode, "", "why", TimeSpan.FromSeconds(2), "reason"));
        await using var pool = new ExecutorPool(Config(), runner);

        var error = (await pool.ExecuteAsync(new ExecutorTask("t"), 0, attempt: 4)).Error!;

        Assert.Equal((failure, exitCode, 4, TimeSpan.FromSeconds(2)), (error.Failure, error.ExitCode, error.Attempt, error.Duration));
        Assert.Equal(0, pool.ActiveCount);
    }

    [Fact]
    public void A_timeout_below_one_second_is_refused()
    {
        var config = Config();
        config.TaskTimeoutSeconds = 0;

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ExecutorPool(config));
        Assert.Contains("executor.task_timeout_seconds", error.Message);
    }
}
