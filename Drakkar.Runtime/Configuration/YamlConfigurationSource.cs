using Microsoft.Extensions.Configuration;

namespace Drakkar.Configuration;

/// <summary>
/// The Drakkar YAML file as a configuration source: its keys appear in <see cref="IConfiguration"/> (so an
/// application binds its own sections from the same file), and the worker binds Drakkar's sections from the tree
/// the provider read, which keeps line numbers for error messages. <c>${VAR}</c> is expanded while reading.
/// </summary>
internal sealed class YamlConfigurationSource : IConfigurationSource
{
    public YamlConfigurationSource(string? file, string chosenBy, IReadOnlyDictionary<string, string?> environment)
    {
        File = file;
        ChosenBy = chosenBy;
        Environment = environment;
    }

    /// <summary>YAML given as text rather than a file.</summary>
    public static YamlConfigurationSource FromText(string yaml, IReadOnlyDictionary<string, string?> environment) =>
        new(null, "", environment) { Text = yaml };

    /// <summary>The YAML itself when it was given as text.</summary>
    public string? Text { get; private init; }

    /// <summary>The file to read; null when there is none (defaults and overrides only).</summary>
    public string? File { get; }

    /// <summary>How the file was chosen (<c>given by --config</c>, …), for the message when it is missing.</summary>
    public string ChosenBy { get; }

    public IReadOnlyDictionary<string, string?> Environment { get; }

    public IConfigurationProvider Build(IConfigurationBuilder builder) => new YamlConfigurationProvider(this);
}

internal sealed class YamlConfigurationProvider : ConfigurationProvider
{
    private string? _yaml;

    public YamlConfigurationProvider(YamlConfigurationSource source) => Source = source;

    public YamlConfigurationSource Source { get; }

    /// <exception cref="ConfigException">The file is missing, unreadable or not valid YAML.</exception>
    public override void Load()
    {
        _yaml = Source.Text;
        if (Source.File is { } file) _yaml = ReadFile(file);
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        if (ReadTree([]) is { } root) Flatten(root, null, data);
        Data = data;
    }

    /// <summary>The text of configuration files that cannot be read twice (pipes), by path.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> ReadOnce = new(StringComparer.Ordinal);

    private string ReadFile(string file)
    {
        // The runtime says "Access to the path is denied" for a directory, even to root.
        if (System.IO.Directory.Exists(file))
            throw new ConfigException([new ConfigProblem("", $"configuration file '{file}' ({Source.ChosenBy}) is a directory; name the YAML file in it")], file);
        if (ReadOnce.TryGetValue(file, out var kept)) return kept;
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var text = reader.ReadToEnd();
            // A pipe (`--config <(…)`, /dev/stdin) gives its text once, and a start loads the configuration more than
            // once (the check of the handler's sinks, then the host): read again, it was empty, and the error blamed a
            // sink "not configured" in a file that configures it.
            if (!stream.CanSeek) ReadOnce[file] = text;
            return text;
        }
        catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ConfigException([new ConfigProblem("", $"configuration file '{file}' ({Source.ChosenBy}) does not exist")], file);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException([new ConfigProblem("", $"configuration file '{file}' ({Source.ChosenBy}) cannot be read: {exception.Message}")], file);
        }
    }

    /// <summary>A fresh tree of the file (the binder merges overrides into it in place); problems found while reading are added.</summary>
    public MapNode? ReadTree(List<ConfigProblem> problems) =>
        _yaml is null ? null : YamlTreeReader.Read(_yaml, Source.Environment, problems, Source.File);

    private static void Flatten(ConfigNode node, string? path, Dictionary<string, string?> data)
    {
        switch (node)
        {
            case MapNode map:
                foreach (var entry in map.Entries) Flatten(entry.Value, Join(path, entry.Key), data);
                if (map.Entries.Count == 0 && path is not null) data[path] = null;
                break;
            case SequenceNode sequence:
                for (var index = 0; index < sequence.Items.Count; index++)
                    Flatten(sequence.Items[index], Join(path, index.ToString(System.Globalization.CultureInfo.InvariantCulture)), data);
                if (sequence.Items.Count == 0 && path is not null) data[path] = null;
                break;
            case ScalarNode scalar when path is not null:
                data[path] = scalar.Value;
                break;
        }
    }

    private static string Join(string? path, string key) => path is null ? key : ConfigurationPath.Combine(path, key);
}
