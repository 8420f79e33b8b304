using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Drakkar.Cli;
using Drakkar.Execution;
using Drakkar.Hosting;
using Drakkar.Sinks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
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

    /// <summary>
    /// Top-level sections of the configuration that belong to the application, not to Drakkar (for example
    /// <c>["greeter"]</c>, bound with <c>services.Configure&lt;GreeterOptions&gt;(configuration.GetSection("greeter"))</c>).
    /// Drakkar validates its own sections strictly and reports any other top-level key of the YAML file or of a
    /// <c>DK_</c> variable as unknown unless it is listed here.
    /// </summary>
    public IReadOnlyCollection<string> ApplicationSections { get; init; } = [];
}

/// <summary>
/// The worker binary's entry point: <c>return await DrakkarApp.RunAsync&lt;MyHandler&gt;(args);</c> gives every
/// worker the same commands (<c>run</c>, <c>check-config</c>, <c>replay-dlq</c>, <c>probe</c>) and <c>--help</c>.
/// </summary>
public static partial class DrakkarApp
{
    private const int ExitUsage = 2;
    internal const int ExitFailure = 1;

    // What trimming keeps of the handler type: its public constructors (the container builds it for run and probe) and
    // its non-public ones too, which check-config's instance made without construction needs (CheckConfig).
    private const DynamicallyAccessedMemberTypes HandlerConstructors =
        DynamicallyAccessedMemberTypes.PublicConstructors | DynamicallyAccessedMemberTypes.NonPublicConstructors;

    private static readonly Dictionary<string, (string[] ValueOptions, string[] Flags)> Commands = new(StringComparer.Ordinal)
    {
        ["run"] = (["--config"], []),
        ["check-config"] = (["--config"], []),
        [ReplayDlqCommand.Name] = ReplayDlqCommand.Options,
        [ProbeCommand.Name] = ProbeCommand.Options,
    };

    /// <inheritdoc cref="RunAsync{THandler}(string[], DrakkarAppOptions?, Action{IServiceCollection, IConfiguration}?)"/>
    public static Task<int> RunAsync<[DynamicallyAccessedMembers(HandlerConstructors)] THandler>(
        string[] args, DrakkarAppOptions? options = null)
        where THandler : DrakkarHandlerBase =>
        RunAsync<THandler>(args, options, configureServices: null);

    /// <summary>
    /// Runs the command <paramref name="args"/> names (<c>run</c> by default) for a worker of
    /// <typeparamref name="THandler"/>, on a .NET Generic Host with the handler resolved from its container.
    /// </summary>
    /// <param name="args">The process's arguments: a command, its options and <c>--section:key=value</c> settings.</param>
    /// <param name="options">Help text, sink kinds, application sections, an in-code default configuration.</param>
    /// <param name="configureServices">
    /// Registers the application's services (whatever the handler's constructor takes) and options classes, for
    /// example <c>(services, configuration) =&gt; services.Configure&lt;GreeterOptions&gt;(configuration.GetSection("greeter"))</c>.
    /// </param>
    /// <returns>The exit code: 0 after a graceful stop, 1 when the worker could not start, 2 for usage and configuration errors.</returns>
    public static async Task<int> RunAsync<[DynamicallyAccessedMembers(HandlerConstructors)] THandler>(
        string[] args, DrakkarAppOptions? options, Action<IServiceCollection, IConfiguration>? configureServices)
        where THandler : DrakkarHandlerBase
    {
        options ??= new DrakkarAppOptions();
        var line = CommandLine.Parse(args, Commands);
        if (line.Errors.Count > 0)
        {
            foreach (var error in line.Errors) Console.Error.WriteLine($"error: {error}");
            // The command's own help when it is a known one.
            var help = line.CommandNamed && Commands.ContainsKey(line.Command) ? $"{ProgramName} {line.Command}" : ProgramName;
            Console.Error.WriteLine($"Run '{help} --help' for usage.");
            return ExitUsage;
        }
        if (line.Help)
        {
            Console.Out.Write(HelpText.For(line.CommandNamed ? line.Command : "", ProgramName, options.Description));
            return 0;
        }
        return line.Command switch
        {
            "check-config" => CheckConfig<THandler>(line, options),
            ReplayDlqCommand.Name => await ReplayDlqAsync(line, options).ConfigureAwait(false),
            ProbeCommand.Name => await ProbeAsync<THandler>(line, options, configureServices).ConfigureAwait(false),
            _ => await RunWorkerAsync<THandler>(line, options, configureServices).ConfigureAwait(false),
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

    /// <summary>
    /// The host every command builds its configuration on: <c>appsettings.json</c> (and
    /// <c>appsettings.{Environment}.json</c>) from the working directory, environment variables and the command
    /// line's <c>--section:key=value</c> settings; the files are read once, not watched.
    /// </summary>
    private static HostApplicationBuilder CreateHostBuilder(CommandLine line)
    {
        var configuration = new ConfigurationManager();
        configuration.AddInMemoryCollection([new("hostBuilder:reloadConfigOnChange", "false")]);
        return Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args = [.. line.Settings],
            Configuration = configuration,
            ContentRootPath = Directory.GetCurrentDirectory(),
        });
    }

    /// <summary>
    /// The keys <c>DK_</c> variables and <c>--section:key</c> arguments set, which a worker on
    /// <see cref="DrakkarAppOptions.DefaultConfig"/> does not read (configuration.md: "none of the sources below apply to it").
    /// </summary>
    internal static List<string> IgnoredOnDefaultConfig(IConfiguration configuration)
    {
        var ignored = new List<string>();
        if (configuration is not IConfigurationRoot root) return ignored;
        foreach (var provider in root.Providers.Where(p => p is Configuration.DrakkarEnvironmentProvider or Microsoft.Extensions.Configuration.CommandLine.CommandLineConfigurationProvider))
            foreach (var section in provider.GetChildKeys([], null).Distinct(StringComparer.OrdinalIgnoreCase))
                ignored.AddRange(Leaves(provider, section).Where(key => !ignored.Contains(key, StringComparer.OrdinalIgnoreCase)));
        return ignored;

        static IEnumerable<string> Leaves(IConfigurationProvider provider, string path)
        {
            var children = provider.GetChildKeys([], path).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            if (children.Count == 0) return [path.Replace(':', '.').ToLowerInvariant()];
            return children.SelectMany(child => Leaves(provider, $"{path}:{child}"));
        }
    }

    /// <summary>Loads the configuration the worker would use, or prints every problem to <paramref name="stderr"/> and returns null.</summary>
    internal static DrakkarConfig? LoadConfig(CommandLine line, DrakkarAppOptions options, TextWriter stderr, IReadOnlyList<SinkDeclaration>? declared = null)
    {
        try
        {
            var builder = CreateHostBuilder(line);
            var file = DrakkarServiceCollectionExtensions.AddSources(builder.Configuration, line.Value("--config"), ConfigLoader.ReadProcessEnvironment());
            return DrakkarServiceCollectionExtensions.Bind(builder.Configuration, options, file is null && options.DefaultConfig is not null);
        }
        catch (ConfigException e)
        {
            stderr.WriteLine(WithSinkProblems(e, declared, options.Sinks).Message);
            return null;
        }
    }

    /// <summary>
    /// The sinks the handler declares (its generated static table), read from an instance made without construction:
    /// its constructor may need services this command does not build.
    /// </summary>
    private static IReadOnlyList<SinkDeclaration> DeclaredSinks<[DynamicallyAccessedMembers(HandlerConstructors)] THandler>()
        where THandler : DrakkarHandlerBase =>
        ((DrakkarHandlerBase)RuntimeHelpers.GetUninitializedObject(typeof(THandler))).DeclaredSinks;

    /// <summary>
    /// <paramref name="error"/> with the declared sinks the configuration does not serve, and the configured ones this
    /// worker has no implementation for, added, so that one run lists every problem (they were reported only once the
    /// others were fixed).
    /// </summary>
    private static ConfigException WithSinkProblems(ConfigException error, IReadOnlyList<SinkDeclaration>? declared, SinkRegistry registry) =>
        declared is null || error.Partial is null ? error
        : error.With(SinkRegistry.DeclarationProblems(error.Partial, declared).Concat(registry.RegistrationProblems(error.Partial))
            .Select(problem => new ConfigProblem("", problem)));

    /// <summary>
    /// Prints the declared sinks <paramref name="config"/> does not serve and the configured ones this worker has no
    /// implementation for; true when there is any. Configuration mistakes like the others: <c>check-config</c> and
    /// <c>run</c> both exit 2 on them, before anything starts.
    /// </summary>
    private static bool ReportSinkProblems(DrakkarConfig config, IReadOnlyList<SinkDeclaration> declared, SinkRegistry registry, CommandLine line)
    {
        var problems = SinkRegistry.DeclarationProblems(config, declared).Concat(registry.RegistrationProblems(config)).ToList();
        if (problems.Count > 0)
        {
            // Worded as every other mistake in the configuration ("Invalid configuration in FILE (N problems): …").
            var file = ConfigLoader.ResolvePath(line.Value("--config"), ConfigLoader.ReadProcessEnvironment());
            Console.Error.WriteLine(new ConfigException([.. problems.Select(problem => new ConfigProblem("", problem))], file).Message);
            return true;
        }
        foreach (var warning in SinkRegistry.UndeclaredWarnings(config, declared)) Console.Error.WriteLine($"warning: {warning}");
        return false;
    }

    private static int CheckConfig<[DynamicallyAccessedMembers(HandlerConstructors)] THandler>(CommandLine line, DrakkarAppOptions options)
        where THandler : DrakkarHandlerBase
    {
        // The sinks the handler declares must be configured, and the configured ones implemented, as `run` checks.
        var declared = DeclaredSinks<THandler>();
        var config = LoadConfig(line, options, Console.Error, declared);
        if (config is null) return ExitUsage;
        var file = ConfigLoader.ResolvePath(line.Value("--config"), ConfigLoader.ReadProcessEnvironment());
        // Said even when the sinks do not match, so that one run lists everything to fix.
        WarnAboutThisMachine(config);
        if (Diagnostics.Ui.DebugServer.ExposureWarning(config.Debug) is { } exposed) Console.Error.WriteLine($"warning: {exposed}");
        foreach (var advice in Configuration.ConfigAdvisories.Of(config)) Console.Error.WriteLine($"warning: {advice}");
        if (ReportSinkProblems(config, declared, options.Sinks, line))
        {
            // Otherwise a check run from the wrong directory reads as a complaint about the file the operator meant.
            if (file is null)
                Console.Error.WriteLine("note: no configuration file was found (--config, $DK_CONFIG, ./drakkar.yaml), so this checked the " +
                    "worker's built-in configuration");
            return ExitUsage;
        }
        var source = file ?? "built-in defaults";
        Console.Out.WriteLine($"# configuration is valid (source: {source}); effective values, secrets masked:");
        Console.Out.Write(SecretMasker.ToMaskedYaml(config));
        return 0;
    }

    /// <summary>
    /// What depends on the machine rather than the file, said as warnings: <c>run</c> checks each at start and would not
    /// start on this machine.
    /// </summary>
    private static void WarnAboutThisMachine(DrakkarConfig config)
    {
        const string RunWouldStop = "`run` checks this at start and would not start on this machine";
        // `run` would stop at its start-up check on this machine: said, not an error (the configuration may be checked
        // where the executor binary is not installed).
        try
        {
            BinaryCheck.Require(config.Executor.BinaryPath);
        }
        catch (WorkerStartupException e)
        {
            Console.Error.WriteLine($"warning: {e.Message}; {RunWouldStop}");
        }
        // The same for a file sink's base directory, with the same words as the sink's own start-up check.
        foreach (var (name, sink) in config.Sinks.Filesystem)
        {
            if (string.IsNullOrWhiteSpace(sink.BasePath)) continue;
            try
            {
                Sinks.Filesystem.BeneathFile.OpenBase(sink.BasePath, $"sinks.filesystem.{name}.base_path").Dispose();
            }
            catch (Sinks.SinkDeliveryException e)
            {
                Console.Error.WriteLine($"warning: {e.Message} {RunWouldStop}");
            }
        }
        // And the directories of the worker's own files (the flight recorder's, the cache's).
        foreach (var (key, directory) in FileDirectories(config))
        {
            if (Storage.PrivateFiles.UnusableDirectory(directory) is { } problem)
                Console.Error.WriteLine($"warning: {key} '{directory}' cannot hold the worker's files: {problem}; {RunWouldStop}");
        }
        // And the ports `run` listens on (taken by another program, or by a worker already running here).
        if (config.Metrics.Enabled) WarnIfTaken(() => Observability.Http.OperationsEndpoint.Listen(config.Metrics.Host, config.Metrics.Port));
        if (config.Debug.Enabled) WarnIfTaken(() => Diagnostics.Ui.DebugServer.Listen(config.Debug));

        static void WarnIfTaken(Func<System.Net.Sockets.TcpListener> listen)
        {
            try
            {
                listen().Dispose();
            }
            catch (WorkerStartupException e)
            {
                Console.Error.WriteLine($"warning: {e.Message}; {RunWouldStop}");
            }
        }
    }

    /// <summary>The directories the worker keeps files in with this configuration, each with the key that names it.</summary>
    private static List<(string Key, string Directory)> FileDirectories(DrakkarConfig config)
    {
        var debug = config.Debug;
        var directories = new List<(string Key, string Directory)>();
        if (debug.Enabled && debug.DbDir.Trim().Length > 0 && (debug.StoreEvents || debug.StoreConfig || debug.StoreState))
            directories.Add(("debug.db_dir", debug.DbDir));
        // The cache falls back to debug.db_dir when its own is empty.
        var (cacheKey, cacheDirectory) = config.Cache.DbDir.Trim().Length > 0 ? ("cache.db_dir", config.Cache.DbDir) : ("debug.db_dir", debug.DbDir);
        if (config.Cache.Enabled && cacheDirectory.Trim().Length > 0 && !directories.Exists(d => d.Directory == cacheDirectory))
            directories.Add((cacheKey, cacheDirectory));
        return directories;
    }

    private static async Task<int> ReplayDlqAsync(CommandLine line, DrakkarAppOptions options)
    {
        var config = LoadConfig(line, options, Console.Error);
        if (config is null) return ExitUsage;
        using var signals = new ShutdownSignals(Console.Error);
        return await ReplayDlqCommand.RunAsync(line, config, Console.Out, Console.Error, signals.Token, ProgramName).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>probe</c>: the handler comes from the same container as for <c>run</c> (constructor injection works), the
    /// worker's configuration and log provider too; nothing is started, delivered or committed.
    /// </summary>
    private static async Task<int> ProbeAsync<[DynamicallyAccessedMembers(HandlerConstructors)] THandler>(
        CommandLine line, DrakkarAppOptions options, Action<IServiceCollection, IConfiguration>? configureServices)
        where THandler : DrakkarHandlerBase
    {
        if (CheckedHost<THandler>(line, options, configureServices, out var refused) is not (var host, var config)) return refused;
        using (host)
        {
            var handler = host.Services.GetRequiredService<THandler>();
            var loggers = host.Services.GetRequiredService<ILoggerFactory>();
            using var signals = new ShutdownSignals(Console.Error);
            await using var stdout = Console.OpenStandardOutput();
            return await ProbeCommand.RunAsync(line, handler, config, DefaultParts(options.Sinks, loggers), loggers, stdout, Console.Error, signals.Token)
                .ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The worker's host and its bound configuration, or null (the reasons printed, <paramref name="refused"/> the exit
    /// code) when the configuration is invalid or does not serve the sinks the handler declares (2), or the host cannot
    /// be built (1): <c>run</c> and <c>probe</c> refuse the same mistakes, before anything starts.
    /// </summary>
    private static (IHost Host, DrakkarConfig Config)? CheckedHost<[DynamicallyAccessedMembers(HandlerConstructors)] THandler>(
        CommandLine line, DrakkarAppOptions options, Action<IServiceCollection, IConfiguration>? configureServices, out int refused)
        where THandler : DrakkarHandlerBase
    {
        var declared = DeclaredSinks<THandler>();
        IHost host;
        DrakkarConfig config;
        refused = ExitUsage;
        try
        {
            host = BuildHost<THandler>(line, options, configureServices);
            config = host.Services.GetRequiredService<DrakkarConfig>();
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine(WithSinkProblems(e, declared, options.Sinks).Message);
            return null;
        }
        catch (Exception e) when (e is AggregateException or InvalidOperationException)
        {
            // The host's own checks of the services (on in the Development environment: a service the handler needs
            // is not registered, a scoped one is injected into it): the same failure a Production start reports when
            // it builds the handler, and reported the same way (it was an unhandled exception, exit 134).
            var reason = SecretMasker.Mask(e is AggregateException { InnerExceptions: [var only] } ? only.Message : e.Message);
            Console.Error.WriteLine($"error: the worker could not start: {reason}");
            refused = ExitFailure;
            return null;
        }
        if (ReportSinkProblems(config, declared, options.Sinks, line))
        {
            host.Dispose();
            return null;
        }
        return (host, config);
    }

    /// <summary>The worker's host: the configuration sources, Drakkar's services and the application's own.</summary>
    private static IHost BuildHost<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] THandler>(
        CommandLine line, DrakkarAppOptions options, Action<IServiceCollection, IConfiguration>? configureServices)
        where THandler : DrakkarHandlerBase
    {
        var builder = CreateHostBuilder(line);
        builder.Services.AddDrakkar<THandler>(builder.Configuration, options, line.Value("--config"), reportsStartFailure: true);
        configureServices?.Invoke(builder.Services, builder.Configuration);
        return builder.Build();
    }

    private static async Task<int> RunWorkerAsync<[DynamicallyAccessedMembers(HandlerConstructors)] THandler>(
        CommandLine line, DrakkarAppOptions options, Action<IServiceCollection, IConfiguration>? configureServices)
        where THandler : DrakkarHandlerBase
    {
        // Every worker creates a Kafka consumer; its native binding runs meanwhile on another core.
        Kafka.KafkaNativeLibrary.BindInBackground();
        // Bound before anything starts, so configuration mistakes exit 2 with every problem listed.
        if (CheckedHost<THandler>(line, options, configureServices, out var refused) is not (var host, _)) return refused;
        if (host.Services.GetRequiredService<DrakkarWorkerSetup>().OnDefaultConfig
            && IgnoredOnDefaultConfig(host.Services.GetRequiredService<IConfiguration>()) is { Count: > 0 } ignored)
        {
            Console.Error.WriteLine($"warning: no configuration file was found, so the built-in default configuration runs; what DK_ variables or " +
                $"the command line set ({string.Join(", ", ignored)}) does not apply to it. Give --config FILE (or DK_CONFIG) to use those settings");
        }

        using (host)
        {
            try
            {
                await host.StartAsync().ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested)
            {
                // A stop signal while a hosted service of the application's own was still starting: the worker may be
                // running already, so it is stopped as usual (drain, commit, leave).
                await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
                return 0;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ReportStartFailure(e, host.Services.GetRequiredService<ILoggerFactory>());
                // A sink section the sink cannot use (an unregistered plugin kind, a package not referenced) is a
                // configuration mistake like those found before the start.
                return e is SinkConfigurationException ? ExitUsage : ExitFailure;
            }

            var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
            var exitCode = 0;
            var stopped = Task.Delay(Timeout.Infinite, lifetime.ApplicationStopping).ContinueWith(_ => 0, TaskScheduler.Default);
            // No worker: a stop signal ended the start (the service logged it); the host stops at once.
            if (options.Companion is { } companion && host.Services.GetRequiredService<DrakkarWorkerSetup>().OnDefaultConfig
                && host.Services.GetRequiredService<DrakkarWorkerService>().Worker is { } worker)
            {
                var finished = await Task.WhenAny(companion(worker, lifetime.ApplicationStopping), stopped).ConfigureAwait(false);
                exitCode = finished.IsCompletedSuccessfully ? finished.Result : ExitFailure;
            }
            else
            {
                await stopped.ConfigureAwait(false);
            }
            await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
            // Consumption ended on its own (the log says why): exit 1 so that the worker is restarted.
            return host.Services.GetRequiredService<DrakkarWorkerService>().Worker is { Failed.IsCompleted: true } ? ExitFailure : exitCode;
        }
    }

    /// <summary>
    /// Says once why the worker did not start: a log line (the host's own, which carries a stack trace even for a
    /// configuration mistake, is left out) and a plain line on stderr. A failed check of Drakkar's own (configuration,
    /// a sink that cannot connect, a port in use) is its message alone, which names what to change; anything else, a
    /// hook's exception for one, keeps its stack trace in the log line.
    /// </summary>
    private static void ReportStartFailure(Exception error, ILoggerFactory loggers)
    {
        var reason = SecretMasker.Mask(error.Message);
        var ownCheck = error is ConfigException or SinkConfigurationException or SinkStartupException or WorkerStartupException;
        LogStartFailed(loggers.CreateLogger("Drakkar.Worker"), ownCheck ? null : error, reason);
        Console.Error.WriteLine($"error: the worker could not start: {reason}");
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The worker could not start: {Reason}")]
    private static partial void LogStartFailed(ILogger logger, Exception? error, string reason);

    /// <summary>The production parts: the process pool and the configured sinks, logging to <paramref name="loggers"/> (else to a factory built from <c>logging</c>).</summary>
    internal static WorkerParts DefaultParts(Sinks.SinkRegistry? registry = null, ILoggerFactory? loggers = null,
        Func<DrakkarHandlerBase>? probeHandler = null) => new()
    {
        Loggers = loggers,
        ProbeHandler = probeHandler,
        Executor = (config, metrics, loggers) =>
        {
            var pool = new ExecutorPool(config.Executor, logger: loggers.CreateLogger<ExecutorPool>(), metrics: metrics);
            metrics.PoolActive.SampleWith(() => pool.ActiveCount);
            metrics.ExecutorProcesses.SampleWith(() => pool.PersistentProcessCount);
            return pool;
        },
        Delivery = (config, handler, workerId, metrics, loggers, cancellationToken) =>
            DeliveryStartup.ConnectAsync(config, handler, workerId, metrics, loggers, registry ?? new Sinks.SinkRegistry(), cancellationToken),
    };
}
