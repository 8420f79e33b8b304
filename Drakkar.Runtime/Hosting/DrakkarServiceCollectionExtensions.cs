using System.Diagnostics.CodeAnalysis;
using Drakkar.Configuration;
using Drakkar.Hosting;
using Drakkar.Observability.Logging;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Drakkar;

/// <summary>Adds a Drakkar worker to a .NET host: <c>builder.Services.AddDrakkar&lt;MyHandler&gt;(builder.Configuration);</c>.</summary>
public static class DrakkarServiceCollectionExtensions
{
    /// <summary>
    /// Runs a worker of <typeparamref name="THandler"/> as a hosted service of the host being built:
    /// <list type="bullet">
    /// <item>the Drakkar YAML file (<c>--config PATH</c> on the host's command line, else <c>DK_CONFIG</c>, else
    /// <c>./drakkar.yaml</c>) becomes the lowest configuration source of <paramref name="configuration"/>, and
    /// <c>DK_SECTION__KEY</c> variables a source just below the command line, so the application binds its own
    /// sections from the same file;</item>
    /// <item>the handler is resolved from the container (constructor injection of services, <c>ILogger&lt;T&gt;</c>,
    /// <c>IOptions&lt;T&gt;</c>); register it yourself first to control how it is built;</item>
    /// <item>Drakkar's log provider replaces the host's default ones (console, debug, event source), so every
    /// <c>ILogger</c> writes Drakkar's log lines as <c>logging.*</c> says; providers added afterwards are kept;</item>
    /// <item>SIGTERM/SIGINT stop the host gracefully (the worker drains); a second signal exits 130 at once.</item>
    /// </list>
    /// </summary>
    /// <param name="services">The host's services (<c>builder.Services</c>).</param>
    /// <param name="configuration">The host's configuration (<c>builder.Configuration</c>).</param>
    /// <param name="options">Sink kinds beyond the runtime's own, application sections, an in-code default configuration.</param>
    /// <exception cref="ConfigException">The YAML file is named but missing, or is not valid YAML.</exception>
    public static IServiceCollection AddDrakkar<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] THandler>(
        this IServiceCollection services, IConfigurationManager configuration, DrakkarAppOptions? options = null)
        where THandler : DrakkarHandlerBase =>
        // The host's command line sets the "config" key from --config PATH, as DrakkarApp's own --config does.
        services.AddDrakkar<THandler>(configuration, options, configPath: configuration?["config"]);

    internal static IServiceCollection AddDrakkar<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] THandler>(
        this IServiceCollection services, IConfigurationManager configuration, DrakkarAppOptions? options, string? configPath,
        bool reportsStartFailure = false)
        where THandler : DrakkarHandlerBase
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        options ??= new DrakkarAppOptions();
        var environment = ConfigLoader.ReadProcessEnvironment();
        var onDefaultConfig = AddSources(configuration, configPath, environment) is null && options.DefaultConfig is not null;
        services.AddSingleton(new DrakkarWorkerSetup(options, onDefaultConfig));
        services.AddSingleton(provider => Bind(provider.GetRequiredService<IConfiguration>(), options, onDefaultConfig));
        services.AddSingleton(provider => WorkerIdentity.Resolve(provider.GetRequiredService<DrakkarConfig>(), environment));
        services.TryAddSingleton<THandler>();
        services.AddSingleton(provider => new DrakkarWorkerService(provider.GetRequiredService<THandler>(),
            provider.GetRequiredService<DrakkarConfig>(), provider.GetRequiredService<WorkerIdentity>(),
            provider.GetRequiredService<ILoggerFactory>(), options.Sinks,
            // The debug UI's probe runs a handler of its own, made from the container as the worker's was.
            () => ActivatorUtilities.CreateInstance<THandler>(provider), provider.GetService<IHostApplicationLifetime>()));
        services.AddHostedService(provider => provider.GetRequiredService<DrakkarWorkerService>());

        services.RemoveAll<ILoggerProvider>();
        services.AddSingleton<ILoggerProvider>(provider =>
        {
            var config = provider.GetRequiredService<DrakkarConfig>();
            var identity = provider.GetRequiredService<WorkerIdentity>();
            return DrakkarLoggerProvider.Create(config.Logging, new LogContext(identity.WorkerId, config.Kafka.ConsumerGroup, config.ClusterName),
                omitHostStartFailure: reportsStartFailure, secrets: Sinks.SinkSecretMasker.For(config));
        });
        // logging.level is the floor for every category; Logging:LogLevel rules from appsettings.json still apply on top.
        services.AddSingleton<IConfigureOptions<LoggerFilterOptions>>(provider => new ConfigureOptions<LoggerFilterOptions>(filters =>
            filters.MinLevel = LogSink.ParseLevel(provider.GetRequiredService<DrakkarConfig>().Logging.Level)));
        services.AddSingleton<IHostLifetime, SignalLifetime>();
        return services;
    }

    /// <summary>
    /// Adds the Drakkar YAML file and the <c>DK_</c> variables to <paramref name="configuration"/>. Precedence,
    /// lowest first: the YAML file, <c>appsettings*.json</c>, <c>DK_</c> variables, the command line.
    /// </summary>
    /// <returns>The YAML file read; null when there is none.</returns>
    internal static string? AddSources(IConfigurationManager configuration, string? configPath, IReadOnlyDictionary<string, string?> environment)
    {
        var (file, chosenBy) = ConfigLoader.Resolve(configPath, environment, Directory.GetCurrentDirectory());
        configuration.Sources.Insert(0, new YamlConfigurationSource(file, chosenBy, environment));
        var commandLine = IndexOfCommandLine(configuration.Sources);
        configuration.Sources.Insert(commandLine < 0 ? configuration.Sources.Count : commandLine, new DrakkarEnvironmentSource(environment));
        return file;
    }

    /// <summary>The worker's configuration: the in-code default when no file was found and one is given, else bound from <paramref name="configuration"/>.</summary>
    internal static DrakkarConfig Bind(IConfiguration configuration, DrakkarAppOptions options, bool onDefaultConfig) =>
        onDefaultConfig ? options.DefaultConfig!() : ConfigLoader.Bind(configuration, options.ApplicationSections);

    private static int IndexOfCommandLine(IList<IConfigurationSource> sources)
    {
        for (var index = sources.Count - 1; index >= 0; index--)
            if (sources[index] is CommandLineConfigurationSource) return index;
        return -1;
    }
}
