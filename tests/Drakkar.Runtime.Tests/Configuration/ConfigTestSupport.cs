namespace Drakkar.Runtime.Tests.Configuration;

internal static class ConfigTestSupport
{
    public static IReadOnlyDictionary<string, string?> Env(params (string Name, string? Value)[] variables)
    {
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (name, value) in variables) environment[name] = value;
        return environment;
    }

    public static ConfigException LoadFails(string yaml, IReadOnlyDictionary<string, string?>? environment = null) =>
        Assert.Throws<ConfigException>(() => ConfigLoader.LoadFromYaml(yaml, environment ?? Env()));

    /// <summary>The problem reported for exactly this key path (fails when there is none or several).</summary>
    public static ConfigProblem ProblemAt(ConfigException exception, string path) =>
        Assert.Single(exception.Problems, problem => problem.Path == path);
}
