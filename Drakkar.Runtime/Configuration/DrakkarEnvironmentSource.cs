using Microsoft.Extensions.Configuration;

namespace Drakkar.Configuration;

/// <summary>
/// The <c>DK_SECTION__KEY</c> variables as a configuration source: in <see cref="IConfiguration"/> they read as
/// <c>section:key</c> (like <c>AddEnvironmentVariables("DK_")</c>), and the worker merges them into its tree with
/// the variable's name kept for error messages, inline mappings and lists, and comma-separated lists.
/// </summary>
internal sealed class DrakkarEnvironmentSource : IConfigurationSource
{
    public DrakkarEnvironmentSource(IReadOnlyDictionary<string, string?> environment) => Environment = environment;

    public IReadOnlyDictionary<string, string?> Environment { get; }

    public IConfigurationProvider Build(IConfigurationBuilder builder) => new DrakkarEnvironmentProvider(Environment);
}

internal sealed class DrakkarEnvironmentProvider : ConfigurationProvider
{
    public DrakkarEnvironmentProvider(IReadOnlyDictionary<string, string?> environment) => Environment = environment;

    public IReadOnlyDictionary<string, string?> Environment { get; }

    public override void Load()
    {
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in ConfigOverrides.EnvironmentOverrides(Environment))
            data[string.Join(ConfigurationPath.KeyDelimiter, ConfigOverrides.Segments(name))] = value;
        Data = data;
    }
}
