namespace Drakkar.IntegrationTests.Hosting;

/// <summary>Tests that swap the process's <see cref="Console"/> streams; they run alone, after every other collection.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection
{
    public const string Name = "console";
}

/// <summary>docs/handlers.md, "What throwing does": a throwing <c>OnStartup</c> or <c>OnReady</c> stops the worker binary with exit code 1 and says why.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class StartupFailureTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-startup-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public sealed class ThrowingOnStartup : DrakkarHandler
    {
        public override ValueTask<DrakkarConfig> OnStartup(DrakkarConfig config) => throw new InvalidOperationException("no licence for this worker");

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    public sealed class ThrowingOnReady : DrakkarHandler
    {
        public override ValueTask OnReady(DrakkarConfig config, Npgsql.NpgsqlDataSource? postgres) =>
            throw new InvalidOperationException("the lookup table is missing");

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    public sealed class Plain : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    /// <summary>A handler that needs a service nobody registered.</summary>
    public sealed class NeedsAService(NeedsAService.Lookup lookup) : DrakkarHandler
    {
        public sealed class Lookup;

        public Lookup Source => lookup;

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    [Theory]
    [InlineData("Production")]
    // The host checks every service when it is built in Development, and that threw out of RunAsync: an unhandled
    // exception, exit 134.
    [InlineData("Development")]
    public async Task A_service_the_handler_needs_and_nobody_registered_exits_1_with_the_reason_in_any_environment(string environment)
    {
        var before = Environment.GetEnvironmentVariable("DOTNET_ENVIRONMENT");
        Environment.SetEnvironmentVariable("DOTNET_ENVIRONMENT", environment);
        try
        {
            var (exitCode, stderr) = await RunAsync<NeedsAService>();

            Assert.Equal(1, exitCode);
            Assert.Contains("error: the worker could not start: ", stderr, StringComparison.Ordinal);
            Assert.Contains("Unable to resolve service for type", stderr, StringComparison.Ordinal);
            Assert.Contains("Lookup", stderr, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable("DOTNET_ENVIRONMENT", before);
        }
    }

    private async Task<(int ExitCode, string Stderr)> RunAsync<[System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(
        System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicConstructors)] THandler>(string extraYaml = "") where THandler : DrakkarHandlerBase
    {
        var config = Path.Combine(_dir, "drakkar.yaml");
        // Nothing listens on the brokers' port: a worker that got as far as consuming would never be ready.
        await File.WriteAllTextAsync(config, $"""
            kafka: {"{"} brokers: "127.0.0.1:{Fixtures.FreePort.Next()}", source_topic: requests {"}"}
            metrics: {"{"} enabled: false {"}"}
            {extraYaml}
            """);
        var stderr = new StringWriter();
        var original = Console.Error;
        Console.SetError(stderr);
        try
        {
            var exitCode = await DrakkarApp.RunAsync<THandler>(["run", "--config", config]).WaitAsync(TimeSpan.FromSeconds(30));
            return (exitCode, stderr.ToString());
        }
        finally
        {
            Console.SetError(original);
        }
    }

    [Fact]
    public async Task OnStartup_throwing_exits_1_with_the_reason()
    {
        var (exitCode, stderr) = await RunAsync<ThrowingOnStartup>();

        Assert.Equal(1, exitCode);
        Assert.Contains("error: the worker could not start: no licence for this worker", stderr);
    }

    [Fact]
    public async Task OnReady_throwing_exits_1_with_the_reason()
    {
        var (exitCode, stderr) = await RunAsync<ThrowingOnReady>();

        Assert.Equal(1, exitCode);
        Assert.Contains("error: the worker could not start: the lookup table is missing", stderr);
        // A hook's exception is the application's bug: its stack trace is in the worker's own log line, once.
        Assert.Contains("The worker could not start: the lookup table is missing", stderr);
        Assert.Contains(nameof(ThrowingOnReady), stderr);
        Assert.DoesNotContain("Hosting failed to start", stderr);
    }

    [Theory]
    [InlineData("/nonexistent/drakkar-tool", "executor.binary_path '/nonexistent/drakkar-tool' is not a file this worker can run (no such file)")]
    [InlineData("drakkar-no-such-tool", "executor.binary_path 'drakkar-no-such-tool' is not found on the worker's PATH")]
    [InlineData("{dir}/tool.txt", "executor.binary_path '{dir}/tool.txt' is not a file this worker can run (it is not executable by this worker)")]
    [InlineData("{dir}", "executor.binary_path '{dir}' is not a file this worker can run (it is a directory)")]
    public async Task An_executor_binary_that_cannot_run_stops_the_worker_at_start(string binary, string error)
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, "tool.txt"), "not a program");
        (binary, error) = (binary.Replace("{dir}", _dir, StringComparison.Ordinal), error.Replace("{dir}", _dir, StringComparison.Ordinal));

        var (exitCode, stderr) = await RunAsync<Plain>($"executor: {{ binary_path: \"{binary}\" }}");

        Assert.Equal(1, exitCode);
        Assert.Contains("error: the worker could not start: " + error, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public async Task A_cache_directory_the_worker_cannot_use_stops_it_before_any_sink_connects()
    {
        var file = Path.Combine(_dir, "a-file");
        await File.WriteAllTextAsync(file, "");

        // The file sink's base_path is missing too: had the sinks connected first, that would be the reason given.
        var (exitCode, stderr) = await RunAsync<Plain>($$"""
            cache: { enabled: true, db_dir: "{{file}}/cache" }
            sinks: { filesystem: { results: { base_path: "{{_dir}}/missing" } } }
            """);

        Assert.Equal(1, exitCode);
        Assert.Contains($"error: the worker could not start: the cache file {file}/cache/", stderr);
        Assert.Contains($"(cache.db_dir: '{file}/cache'): '{file}' is a file, not a directory", stderr);
        Assert.DoesNotContain("base_path", stderr);
    }

    [Fact]
    public async Task A_recorder_directory_under_a_regular_file_is_named_as_such()
    {
        var file = Path.Combine(_dir, "not-a-directory");
        await File.WriteAllTextAsync(file, "");

        var (exitCode, stderr) = await RunAsync<Plain>($"debug: {{ enabled: true, port: {Fixtures.FreePort.Next()}, db_dir: \"{file}/recorder\" }}");

        Assert.Equal(1, exitCode);
        Assert.Contains($"error: the worker could not start: the flight recorder cannot write to debug.db_dir '{file}/recorder': " +
            $"'{file}' is a file, not a directory", stderr);
    }

    [Fact]
    public async Task A_failed_startup_check_is_reported_once_without_a_stack_trace()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;

        var (exitCode, stderr) = await RunAsync<Plain>($"debug: {{ enabled: true, port: {port}, db_dir: \"{_dir}\" }}");

        Assert.Equal(1, exitCode);
        Assert.Contains($"error: the worker could not start: the debug UI cannot listen on 127.0.0.1:{port}", stderr);
        Assert.Contains("set debug.port to a free port", stderr);
        // The host's own "Hosting failed to start" line, with its stack trace, is left out: the message says what to change.
        Assert.DoesNotContain("Hosting failed to start", stderr);
        Assert.DoesNotContain("   at ", stderr);
        Assert.Contains("The worker could not start: the debug UI cannot listen", stderr);
    }
}
