namespace Drakkar.Generators.Tests.Infrastructure;

internal static class RepositoryPaths
{
    /// <summary>The repository root: the nearest directory above the test binaries that holds Drakkar.sln.</summary>
    public static string Root { get; } = FindRoot();

    public static string TestProject => Path.Combine(Root, "tests", "Drakkar.Generators.Tests");

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Drakkar.sln"))) return directory.FullName;
        }
        throw new InvalidOperationException("Drakkar.sln not found above " + AppContext.BaseDirectory);
    }
}
