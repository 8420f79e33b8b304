using System.Text;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Drakkar.IntegrationTests.Hosting;

/// <summary>The worker on a .NET Generic Host built by the application: DI-resolved handler, IOptions from the YAML, the host's logging, the host's stop.</summary>
[Collection(KafkaCollection.Name)]
public sealed partial class HostedWorkerTests(KafkaBroker kafka) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("drakkar-hosted-");

    public sealed class GreeterOptions
    {
        public string Greeting { get; set; } = "";
        public string File { get; set; } = "";
    }

    /// <summary>Writes "{greeting} {value}" per message to the file its options name, and logs through its injected logger.</summary>
    public sealed class GreeterHandler(ILogger<GreeterHandler> logger, IOptions<GreeterOptions> options) : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
        {
            var greeter = options.Value;
            File.AppendAllLines(greeter.File, messages.Select(message => $"{greeter.Greeting} {Encoding.UTF8.GetString(message.Value)}"));
            logger.LogInformation("Greeted {Count} messages", messages.Count);
            return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
        }
    }

    /// <summary>A Generic Host running <see cref="GreeterHandler"/> on <paramref name="topic"/>, its options from the same YAML file.</summary>
    private IHost GreeterHost(string topic, string greetings, string moreYaml = "")
    {
        var yaml = Path.Combine(_dir.FullName, "drakkar.yaml");
        File.WriteAllText(yaml, $"""
            kafka:
              brokers: {kafka.BootstrapServers}
              source_topic: {topic}
              consumer_group: {topic}-g
              commit_interval_ms: 50
            metrics:
              enabled: false
            greeter:
              greeting: hello from yaml
              file: {greetings}

            """ + moreYaml);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = _dir.FullName });
        builder.Services.AddDrakkar<GreeterHandler>(builder.Configuration, new DrakkarAppOptions { ApplicationSections = ["greeter"] }, yaml);
        builder.Services.Configure<GreeterOptions>(builder.Configuration.GetSection("greeter"));
        return builder.Build();
    }

    [Fact]
    public async Task A_handler_built_by_the_container_logs_to_the_worker_log_uses_its_yaml_options_and_stops_with_the_host()
    {
        var topic = kafka.CreateTopic("hosted");
        var greetings = Path.Combine(_dir.FullName, "greetings.txt");
        var log = Path.Combine(_dir.FullName, "worker.log");
        using var host = GreeterHost(topic, greetings, $"""
            logging:
              output: {log}
            """);
        await host.StartAsync();
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 3);

        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, $"{topic}-g", 1)[0] == 3, Patience, "three messages committed");
        await host.StopAsync();

        Assert.Equal(["hello from yaml m-0", "hello from yaml m-1", "hello from yaml m-2"], File.ReadAllLines(greetings));
        var lines = File.ReadAllLines(log);
        Assert.Contains(lines, line => line.Contains("\"logger\":\"" + typeof(GreeterHandler).FullName!.Replace('+', '.') + "\"", StringComparison.Ordinal)
                                       && line.Contains("Greeted", StringComparison.Ordinal));
        // The host's stop is the worker's graceful stop: it drained and said so in the same log.
        Assert.Contains(lines, line => line.Contains("\"message\":\"Stopped\"", StringComparison.Ordinal));
    }

    /// <summary>Declares a file sink <c>results</c>; the configuration in the test below leaves it out.</summary>
    [Sink(SinkKind.Filesystem, "results")]
    public sealed partial class ResultsHandler : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) => Tasks([]);
    }

    /// <summary>An OnReady that never returns; <see cref="Reached"/> says it was called.</summary>
    public sealed class HangingReadyHandler : DrakkarHandler
    {
        public static readonly TaskCompletionSource Reached = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async ValueTask OnReady(DrakkarConfig config, Npgsql.NpgsqlDataSource? postgres)
        {
            Reached.TrySetResult();
            await new TaskCompletionSource().Task;
        }

        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) => Tasks([]);
    }

    /// <summary>
    /// A stop while OnReady hung was never seen (the hooks take no token): the host waited for good. The start now ends
    /// without a worker and the host stops as usual, with no exception to catch.
    /// </summary>
    [Fact]
    public async Task A_stop_while_OnReady_hangs_ends_the_start_and_the_host_stops_normally()
    {
        var yaml = Path.Combine(_dir.FullName, "drakkar.yaml");
        File.WriteAllText(yaml, $"""
            kafka:
              brokers: {kafka.BootstrapServers}
              source_topic: {kafka.CreateTopic("hosted-hang")}
            metrics:
              enabled: false
            """);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = _dir.FullName });
        builder.Services.AddDrakkar<HangingReadyHandler>(builder.Configuration, new DrakkarAppOptions(), yaml);
        using var host = builder.Build();
        var service = host.Services.GetRequiredService<Drakkar.Hosting.DrakkarWorkerService>();
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        var running = host.RunAsync();
        await HangingReadyHandler.Reached.Task.WaitAsync(Patience);

        lifetime.StopApplication();

        await running.WaitAsync(Patience);
        Assert.Null(service.Worker);
    }

    [Fact]
    public async Task A_declared_sink_missing_from_the_configuration_is_a_ConfigException_before_any_port_opens()
    {
        var port = FreePort.Next();
        var yaml = Path.Combine(_dir.FullName, "drakkar.yaml");
        File.WriteAllText(yaml, $"""
            kafka:
              brokers: {kafka.BootstrapServers}
              source_topic: missing-sink
            metrics:
              port: {port}
            """);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = _dir.FullName });
        builder.Services.AddDrakkar<ResultsHandler>(builder.Configuration, new DrakkarAppOptions(), yaml);
        using var host = builder.Build();

        // It was a SinkConfigurationException from deep in the start, after the metrics port had opened: exit 1, not 2.
        var error = await Assert.ThrowsAsync<ConfigException>(() => host.StartAsync());
        Assert.Contains("sinks.filesystem.results: the handler declares this sink but it is not configured", error.Message, StringComparison.Ordinal);
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Any, port);
        probe.Start();
    }

    /// <summary>
    /// A poll loop that ended on its own (a defect) left a process that consumed nothing, answered ready and exited 0
    /// when stopped: now the host stops, with exit code 1, and readiness says why meanwhile.
    /// </summary>
    [Fact]
    public async Task A_poll_loop_that_fails_stops_the_host_with_exit_code_1()
    {
        using var host = GreeterHost(kafka.CreateTopic("poll-fails"), Path.Combine(_dir.FullName, "greetings.txt"));
        await host.StartAsync();
        var worker = host.Services.GetRequiredService<Drakkar.Hosting.DrakkarWorkerService>().Worker!;
        await Eventually.True(() => worker.Readiness.IsReady, Patience, "the worker ready");
        var exitCode = Environment.ExitCode;
        try
        {
            var stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
            worker.Consumer!.BeforeEachPoll = () => throw new InvalidOperationException("a defect in the poll loop");

            var failure = await worker.Failed.WaitAsync(Patience);
            Assert.Equal("a defect in the poll loop", failure.Message);
            await Eventually.True(() => stopping.IsCancellationRequested, Patience, "the host stopping");
            Assert.Equal(1, Environment.ExitCode);
            Assert.Contains("the consumer stopped after an unexpected error: a defect in the poll loop", worker.Readiness.Reasons);
            await host.StopAsync();
        }
        finally
        {
            Environment.ExitCode = exitCode;
        }
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
