namespace Drakkar.Runtime.Tests;

internal static class RepositoryPaths
{
    /// <summary>The repository root: the nearest directory above the test binaries that holds Drakkar.sln.</summary>
    public static string Root()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Drakkar.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("Drakkar.sln not found above " + AppContext.BaseDirectory);
    }
}
