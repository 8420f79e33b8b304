using Drakkar.Execution;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Smoke;

/// <summary>
/// The sample's persistent variant (Drakkar.Sample/drakkar.persistent.yaml and persistent/search_child.py): the
/// configuration is valid, and the child answers SearchHandler's unchanged grep-style tasks as grep does per process.
/// </summary>
public sealed class SamplePersistentVariantTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-sample-persistent-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void The_persistent_configuration_is_valid()
    {
        var config = Path.Combine(SampleBinary.RepoRoot(), "Drakkar.Sample", "drakkar.persistent.yaml");
        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        Assert.Contains("mode: \"persistent\"", sample.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_search_child_answers_the_handlers_tasks_as_grep_does()
    {
        var file = Path.Combine(_dir, "corpus.txt");
        await File.WriteAllTextAsync(file, "the quick brown fox\njumps over\nthe lazy dog\nfox again\n");
        string[][] searches = [["-n", "--", "fox", file], ["-n", "--", "the", file], ["-n", "--", "absent", file]];

        var grep = await RunAsync(new ExecutorConfig { BinaryPath = "/bin/grep" }, searches);
        var child = await RunAsync(new ExecutorConfig
        {
            Mode = ExecutorMode.Persistent,
            BinaryPath = Path.Combine(SampleBinary.RepoRoot(), "Drakkar.Sample", "persistent", "search_child.py"),
        }, searches);

        Assert.Equal(["1:the quick brown fox\n4:fox again\n", "1:the quick brown fox\n3:the lazy dog\n", "exit 1"], grep);
        Assert.Equal(grep, child);
    }

    /// <summary>Each search's stdout, or "exit N" when it failed.</summary>
    private static async Task<string[]> RunAsync(ExecutorConfig config, string[][] searches)
    {
        await using var pool = new ExecutorPool(config);
        var outcomes = new List<string>();
        foreach (var args in searches)
        {
            var outcome = await pool.ExecuteAsync(new ExecutorTask(TaskId.New("search")) { Args = args }, 0);
            outcomes.Add(outcome.Succeeded ? outcome.Result.Stdout : $"exit {outcome.Error.ExitCode}");
        }

        return [.. outcomes];
    }
}
