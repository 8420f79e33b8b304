using System.Text;

namespace Drakkar;

/// <summary>One configuration mistake: where it is (<paramref name="Path"/>, e.g. <c>executor.max_executors</c>) and what is wrong.</summary>
/// <param name="Path">Dotted key path; empty for problems with the file as a whole.</param>
/// <param name="Message">What is wrong and, where possible, what would be right.</param>
/// <param name="Source">Where the value came from (<c>line 12</c>, <c>env DK_KAFKA__BROKERS</c>), when known.</param>
public sealed record ConfigProblem(string Path, string Message, string? Source = null)
{
    public override string ToString()
    {
        var text = Path.Length == 0 ? Message : $"{Path}: {Message}";
        return Source is null ? text : $"{text} [{Source}]";
    }
}

/// <summary>
/// The configuration could not be loaded. Every problem found is listed at once (one per line in
/// <see cref="Exception.Message"/>), so an operator fixes a file in one pass instead of one error per restart.
/// </summary>
public sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<ConfigProblem> problems, string? origin = null)
        : base(Format(problems, origin))
    {
        Problems = problems;
        Origin = origin;
    }

    /// <summary>Every problem, in the order the configuration was read.</summary>
    public IReadOnlyList<ConfigProblem> Problems { get; }

    /// <summary>The file the configuration came from, or null for YAML text and environment-only loads.</summary>
    public string? Origin { get; }

    /// <summary>What bound despite the problems, for checks that look at the whole configuration (the handler's declared sinks).</summary>
    internal DrakkarConfig? Partial { get; init; }

    /// <summary>This exception with <paramref name="more"/> problems after its own.</summary>
    internal ConfigException With(IEnumerable<ConfigProblem> more)
    {
        var all = Problems.Concat(more).ToList();
        return all.Count == Problems.Count ? this : new ConfigException(all, Origin) { Partial = Partial };
    }

    private static string Format(IReadOnlyList<ConfigProblem> problems, string? origin)
    {
        var builder = new StringBuilder("Invalid configuration");
        // When every problem is in an environment variable or a command-line option, the file is not where to look.
        if (origin is not null) builder.Append(problems.All(IsOverride) ? " in overrides of " : " in ").Append(origin);
        builder.Append(" (").Append(problems.Count).Append(problems.Count == 1 ? " problem):" : " problems):");
        foreach (var problem in problems)
            builder.Append('\n').Append("  ").Append(problem);
        return builder.ToString();
    }

    private static bool IsOverride(ConfigProblem problem) =>
        problem.Source is { } source && (source.StartsWith("env ", StringComparison.Ordinal) || source == "command line");
}
