namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>A fixture's server is not installed: says what is missing and the command that installs it.</summary>
public sealed class MissingToolException(string what, string installCommand)
    : Exception($"{what} is not installed. Install it with: {installCommand}  (build/setup.sh does this for you)");

internal static class Tools
{
    public static string Require(string path, string what, string installCommand) =>
        File.Exists(path) ? path : throw new MissingToolException($"{what} ({path})", installCommand);

    public static string RequireOnPath(string name, string what, string installCommand)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new MissingToolException($"{what} ('{name}' on PATH)", installCommand);
    }
}
