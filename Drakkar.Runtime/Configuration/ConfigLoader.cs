using System.Collections;
using Drakkar.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.CommandLine;
using Microsoft.Extensions.Configuration.Json;

namespace Drakkar;

/// <summary>
/// Loads <see cref="DrakkarConfig"/>: the YAML file (with <c>${VAR}</c> / <c>${VAR:-default}</c> expanded), then
/// the overrides on top (<c>appsettings.json</c>, <c>DK_SECTION__KEY</c> variables, the command line, when the
/// <see cref="IConfiguration"/> holds them), then validation. Every problem is reported at once in one
/// <see cref="ConfigException"/>. Binding is handwritten and reflection-free, so it works under Native AOT.
/// </summary>
internal static class ConfigLoader
{
    /// <summary>The variable naming the configuration file when no path is given.</summary>
    public const string ConfigPathVariable = "DK_CONFIG";

    /// <summary>The file used from the working directory when neither a path nor <c>DK_CONFIG</c> is given.</summary>
    public const string DefaultFileName = "drakkar.yaml";

    /// <summary>Loads with the process environment and working directory.</summary>
    /// <exception cref="ConfigException">The file is missing, unreadable or invalid; the message lists every problem.</exception>
    public static DrakkarConfig Load(string? path = null) => Load(path, ReadProcessEnvironment());

    /// <summary>
    /// Loads from <paramref name="path"/> (e.g. <c>--config</c>), else the file <c>DK_CONFIG</c> names, else
    /// <c>drakkar.yaml</c> in <paramref name="workingDirectory"/> if it exists, else defaults plus overrides.
    /// </summary>
    /// <param name="path">An explicit file; relative paths resolve against <paramref name="workingDirectory"/>.</param>
    /// <param name="environment">Source of overrides and <c>${VAR}</c> values; injectable so tests need not touch the process.</param>
    /// <param name="workingDirectory">Where relative paths and <c>drakkar.yaml</c> are looked up; the process's when null.</param>
    /// <exception cref="ConfigException">The file is missing, unreadable or invalid; the message lists every problem.</exception>
    public static DrakkarConfig Load(
        string? path, IReadOnlyDictionary<string, string?> environment, string? workingDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var (file, chosenBy) = Resolve(path, environment, workingDirectory ?? Directory.GetCurrentDirectory());
        return Bind(new ConfigurationBuilder().Add(new YamlConfigurationSource(file, chosenBy, environment))
            .Add(new DrakkarEnvironmentSource(environment)).Build());
    }

    /// <summary>Loads from YAML text (no file lookup); environment overrides and expansion apply as for a file.</summary>
    /// <exception cref="ConfigException">The text or the overrides are invalid; the message lists every problem.</exception>
    public static DrakkarConfig LoadFromYaml(string yaml, IReadOnlyDictionary<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        environment ??= new Dictionary<string, string?>();
        return Bind(new ConfigurationBuilder().Add(YamlConfigurationSource.FromText(yaml, environment))
            .Add(new DrakkarEnvironmentSource(environment)).Build());
    }

    /// <summary>
    /// Binds Drakkar's sections from <paramref name="configuration"/>, each source over the ones added before it:
    /// the Drakkar YAML file, <c>appsettings*.json</c> (Drakkar's sections only; .NET's own <c>Logging:LogLevel</c>
    /// is left to .NET), <c>DK_</c> variables and the command line (Drakkar's sections only), as
    /// <c>AddDrakkar</c> adds them to the host's configuration. Other sources (plain environment variables, user
    /// secrets) are not read for Drakkar's keys.
    /// </summary>
    /// <param name="configuration">The application's configuration (for example <c>builder.Configuration</c>).</param>
    /// <param name="applicationSections">
    /// Top-level sections of the YAML file and <c>DK_</c> variables that belong to the application (bound with
    /// <c>services.Configure&lt;T&gt;(configuration.GetSection(…))</c>) and so are not reported as unknown.
    /// </param>
    /// <exception cref="ConfigException">Every problem found, with key paths and sources.</exception>
    public static DrakkarConfig Bind(IConfiguration configuration, IEnumerable<string>? applicationSections = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var problems = new List<ConfigProblem>();
        var root = new MapNode();
        string? origin = null;
        var drakkarSections = DrakkarConfigSchema.Root.Keys.ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var provider in (configuration as IConfigurationRoot)?.Providers ?? [])
        {
            switch (provider)
            {
                case YamlConfigurationProvider yaml:
                    root = yaml.ReadTree(problems) ?? new MapNode();
                    origin = yaml.Source.File;
                    break;
                case DrakkarEnvironmentProvider variables:
                    ConfigOverrides.ApplyEnvironment(root, variables.Environment, problems);
                    break;
                case JsonConfigurationProvider json:
                    ConfigOverrides.ApplyProvider(root, json, Path.GetFileName(json.Source.Path) ?? "json",
                        (section, key) => drakkarSections.Contains(section) && !IsDotnetLoggingKey(section, key));
                    break;
                case CommandLineConfigurationProvider commandLine:
                    ConfigOverrides.ApplyProvider(root, commandLine, "command line", (section, _) => drakkarSections.Contains(section));
                    break;
            }
        }
        var ignored = new HashSet<string>(applicationSections ?? [], StringComparer.OrdinalIgnoreCase);
        root.Entries.RemoveAll(entry => ignored.Contains(entry.Key) && !drakkarSections.Contains(entry.Key));

        var config = new DrakkarConfig();
        DrakkarConfigSchema.Root.Bind(config, root, "", new BindContext(problems, ignored));
        if (problems.Count > 0) throw new ConfigException(problems, origin) { Partial = config };
        return config;
    }

    // appsettings.json's "Logging" section is .NET's (LogLevel, per-provider sections) as well as Drakkar's
    // logging.level/format/output: only Drakkar's keys are read from it.
    private static bool IsDotnetLoggingKey(string section, string key) =>
        key.Length > 0 && string.Equals(section, "logging", StringComparison.OrdinalIgnoreCase)
        && !DrakkarConfigSchema.LoggingKeys.Contains(key, StringComparer.OrdinalIgnoreCase);

    /// <summary>Which file <see cref="Load(string?, IReadOnlyDictionary{string, string?}, string?)"/> would read; null for none.</summary>
    public static string? ResolvePath(
        string? path, IReadOnlyDictionary<string, string?> environment, string? workingDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return Resolve(path, environment, workingDirectory ?? Directory.GetCurrentDirectory()).File;
    }

    /// <summary>A snapshot of the process environment in the shape the loader takes.</summary>
    public static IReadOnlyDictionary<string, string?> ReadProcessEnvironment()
    {
        var snapshot = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
            snapshot[(string)entry.Key] = entry.Value as string;
        return snapshot;
    }

    internal static (string? File, string ChosenBy) Resolve(
        string? path, IReadOnlyDictionary<string, string?> environment, string workingDirectory)
    {
        if (!string.IsNullOrWhiteSpace(path))
            return (Path.GetFullPath(path, workingDirectory), "given by --config");
        if (environment.TryGetValue(ConfigPathVariable, out var fromEnvironment) && !string.IsNullOrWhiteSpace(fromEnvironment))
            return (Path.GetFullPath(fromEnvironment, workingDirectory), $"named by {ConfigPathVariable}");
        var local = Path.Combine(workingDirectory, DefaultFileName);
        // Only the implicit default may be absent: an explicitly named file that is missing is a mistake to report.
        return File.Exists(local) ? (local, "found in the working directory") : (null, "");
    }
}
