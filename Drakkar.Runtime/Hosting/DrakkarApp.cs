using Drakkar.Cli;
using Drakkar.Execution;
using Drakkar.Hosting;
using Microsoft.Extensions.Logging;

namespace Drakkar;

/// <summary>How an application customises <see cref="DrakkarApp"/>.</summary>
public sealed class DrakkarAppOptions
{
    /// <summary>A sentence shown at the top of <c>--help</c>.</summary>
    public string? Description { get; init; }

    /// <summary>
    /// The configuration used when no file is given or found (no <c>--config</c>, no <c>DK_CONFIG</c>, no
    /// <c>./drakkar.yaml</c>); for example an embedded demo. Environment overrides still apply on top of defaults
    /// when this is null.
    /// </summary>
    public Func<DrakkarConfig>? DefaultConfig { get; init; }

    /// <summary>
    /// Runs beside the worker once it has started on <see cref="DefaultConfig"/> (for example a demo feeding it
    /// input); a worker given a configuration file runs without it. When it returns, the worker shuts down
    /// gracefully and the returned value is the exit code.
    /// </summary>
    public Func<WorkerHost, CancellationToken, Task<int>>? Companion { get; init; }

    /// <summary>
    /// Sink kinds beyond the runtime's own, registered at compile time: packaged kinds (<c>new SinkRegistry().AddMongoDB()</c>
    /// from <c>Drakkar.Sinks.MongoDB</c>) and plugins (<c>.Register("kind", factory)</c>).
    /// </summary>
    public Sinks.SinkRegistry Sinks { get; init; } = new();
}

/// <summary>
/// The worker binary's entry point: <c>return await DrakkarApp.RunAsync&lt;MyHandler&gt;(args);</c> gives every
/// worker the same commands (<c>run</c>, <c>check-config</c>, <c>replay-dlq</c>) and <c>--help</c>.
/// </summary>
public static class DrakkarApp
{
    private const int ExitUsage = 2;
    private const int ExitFailure = 1;

    private static readonly Dictionary<string, (string[] ValueOptions, string[] Flags)> Commands = new(StringComparer.Ordinal)
    {
        ["run"] = (["--config"], []),
        ["check-config"] = (["--config"], []),
        [ReplayDlqCommand.Name] = ReplayDlqCommand.Options,
    };

    public static async Task<int> RunAsync<THandler>(string[] args, DrakkarAppOptions? options = null)
        where THandler : DrakkarHandlerBase, new()
    {
        options ??= new DrakkarAppOptions();
        var line = CommandLine.Parse(args, Commands);
        if (line.Errors.Count > 0)
        {
            foreach (var error in line.Errors) Console.Error.WriteLine($"error: {error}");
            Console.Error.WriteLine($"Run '{ProgramName} --help' for usage.");
            return ExitUsage;
        }
        if (line.Help)
        {
            Console.Out.Write(HelpText.For(line.Command, ProgramName, options.Description));
            return 0;
        }
        return line.Command switch
        {
            "check-config" => CheckConfig(line, options),
            ReplayDlqCommand.Name => await ReplayDlqAsync(line, options).ConfigureAwait(false),
            _ => await RunWorkerAsync<THandler>(line, options).ConfigureAwait(false),
        };
    }

    /// <summary>
    /// The worker's command name for usage lines: the executable (the apphost under JIT, as under <c>dotnet run</c>,
    /// or the Native AOT binary), else the assembly's name when started as <c>dotnet name.dll</c>.
    /// </summary>
    private static string ProgramName =>
        Path.GetFileNameWithoutExtension(Environment.ProcessPath) is { Length: > 0 } process && process != "dotnet" ? process
        : Path.GetFileNameWithoutExtension(Environment.GetCommandLineArgs()[0]) is { Length: > 0 } assembly ? assembly
        : "worker";

    /// <summary>Loads the configuration the worker would use, or prints every problem to <paramref name="stderr"/> and returns null.</summary>
    internal static DrakkarConfig? LoadConfig(CommandLine line, Func<DrakkarConfig>? defaultConfig, IReadOnlyDictionary<string, string?> environment,
        TextWriter stderr)
    {
        var path = line.Value("--config");
        try
        {
            if (defaultConfig is { } fallback && ConfigLoader.ResolvePath(path, environment) is null)
                return fallback();
            return ConfigLoader.Load(path, environment);
        }
        catch (ConfigException e)
        {
            stderr.WriteLine(e.Message);
            return null;
        }
    }

    private static int CheckConfig(CommandLine line, DrakkarAppOptions options)
    {
        var environment = ConfigLoader.ReadProcessEnvironment();
        var config = LoadConfig(line, options.DefaultConfig, environment, Console.Error);
        if (config is null) return ExitUsage;
        var source = ConfigLoader.ResolvePath(line.Value("--config"), environment) ?? "built-in defaults";
        Console.Out.WriteLine($"# configuration is valid (source: {source}); effective values, secrets masked:");
        Console.Out.Write(SecretMasker.ToMaskedYaml(config));
        return 0;
    }

    private static async Task<int> ReplayDlqAsync(CommandLine line, DrakkarAppOptions options)
    {
        var config = LoadConfig(line, options.DefaultConfig, ConfigLoader.ReadProcessEnvironment(), Console.Error);
        if (config is null) return ExitUsage;
        using var signals = new ShutdownSignals(Console.Error);
        return await ReplayDlqCommand.RunAsync(line, config, Console.Out, Console.Error, signals.Token, ProgramName).ConfigureAwait(false);
    }

    private static async Task<int> RunWorkerAsync<THandler>(CommandLine line, DrakkarAppOptions options)
        where THandler : DrakkarHandlerBase, new()
    {
        var environment = ConfigLoader.ReadProcessEnvironment();
        var config = LoadConfig(line, options.DefaultConfig, environment, Console.Error);
        if (config is null) return ExitUsage;
        var identity = WorkerIdentity.Resolve(config, environment);

        using var signals = new ShutdownSignals(Console.Error);
        WorkerHost host;
        try
        {
            host = await WorkerHost.StartAsync(new THandler(), config, identity.WorkerId, DefaultParts(options.Sinks), signals.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Console.Error.WriteLine($"error: the worker could not start: {SecretMasker.Mask(e.Message)}");
            return ExitFailure;
        }

        var exitCode = 0;
        var stopped = Task.Delay(Timeout.Infinite, signals.Token).ContinueWith(_ => 0, TaskScheduler.Default);
        var onDefaultConfig = options.DefaultConfig is not null && ConfigLoader.ResolvePath(line.Value("--config"), environment) is null;
        if (options.Companion is { } companion && onDefaultConfig)
        {
            var finished = await Task.WhenAny(companion(host, signals.Token), stopped).ConfigureAwait(false);
            exitCode = finished.IsCompletedSuccessfully ? finished.Result : ExitFailure;
        }
        else
        {
            await stopped.ConfigureAwait(false);
        }
        await host.StopAsync().ConfigureAwait(false);
        return exitCode;
    }

    /// <summary>The production parts: the process pool and the configured sinks.</summary>
    internal static WorkerParts DefaultParts(Sinks.SinkRegistry? registry = null) => new()
    {
        Executor = (config, metrics, loggers) =>
        {
            var pool = new ExecutorPool(config.Executor, logger: loggers.CreateLogger<ExecutorPool>());
            metrics.PoolActive.SampleWith(() => pool.ActiveCount);
            return pool;
        },
        Delivery = (config, handler, workerId, metrics, loggers, cancellationToken) =>
            DeliveryStartup.ConnectAsync(config, handler, workerId, metrics, loggers, registry ?? new Sinks.SinkRegistry(), cancellationToken),
    };
}
