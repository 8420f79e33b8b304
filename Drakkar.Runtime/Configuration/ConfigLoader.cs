using System.Collections;
using Drakkar.Configuration;

namespace Drakkar;

/// <summary>
/// Loads <see cref="DrakkarConfig"/>: the YAML file (with <c>${VAR}</c> / <c>${VAR:-default}</c> expanded), then
/// <c>DK_SECTION__KEY</c> environment overrides on top, then validation. Every problem is reported at once in one
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
        if (file is null) return Bind(null, environment, null);

        string yaml;
        try
        {
            yaml = File.ReadAllText(file);
        }
        catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ConfigException([new ConfigProblem("", $"configuration file '{file}' ({chosenBy}) does not exist")], file);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException([new ConfigProblem("", $"configuration file '{file}' ({chosenBy}) cannot be read: {exception.Message}")], file);
        }
        return Bind(yaml, environment, file);
    }

    /// <summary>Loads from YAML text (no file lookup); environment overrides and expansion apply as for a file.</summary>
    /// <exception cref="ConfigException">The text or the overrides are invalid; the message lists every problem.</exception>
    public static DrakkarConfig LoadFromYaml(string yaml, IReadOnlyDictionary<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        return Bind(yaml, environment ?? new Dictionary<string, string?>(), null);
    }

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

    private static (string? File, string ChosenBy) Resolve(
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

    private static DrakkarConfig Bind(string? yaml, IReadOnlyDictionary<string, string?> environment, string? origin)
    {
        var problems = new List<ConfigProblem>();
        var root = (yaml is null ? null : YamlTreeReader.Read(yaml, environment, problems, origin)) ?? new MapNode();
        EnvironmentOverrides.Apply(root, environment, problems);

        var config = new DrakkarConfig();
        DrakkarConfigSchema.Root.Bind(config, root, "", new BindContext(problems));
        if (problems.Count > 0) throw new ConfigException(problems, origin);
        return config;
    }
}
