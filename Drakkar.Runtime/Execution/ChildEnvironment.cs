using System.Collections;

namespace Drakkar.Execution;

/// <summary>
/// Builds a child's environment: the worker's own variables (unless <c>env_inherit_parent</c> is false) minus
/// every variable whose name says it holds a secret (<see cref="SecretMasker.IsSecretName"/>, the rule the log
/// masker uses) and those matching an <c>env_inherit_deny</c> glob, then <c>executor.env</c>, then the task's env.
/// </summary>
internal static class ChildEnvironment
{
    /// <summary>The worker's current environment variables.</summary>
    public static Dictionary<string, string> CurrentProcess()
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            variables[(string)entry.Key] = (string?)entry.Value ?? "";
        }

        return variables;
    }

    /// <summary>
    /// The part shared by every task: the filtered parent environment overlaid with the configured one.
    /// Computed once per pool because it only changes with the worker's own environment.
    /// </summary>
    public static Dictionary<string, string> Base(
        IReadOnlyDictionary<string, string> parent,
        bool inheritParent,
        IReadOnlyList<string> denyGlobs,
        IReadOnlyDictionary<string, string> configured)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        if (inheritParent)
        {
            foreach (var (name, value) in parent)
            {
                if (!SecretMasker.IsSecretName(name) && !IsDenied(name, denyGlobs))
                {
                    environment[name] = value;
                }
            }
        }

        // The secret rule and the deny globs guard only what is inherited: a configured variable is a deliberate
        // choice (executor.env: { DATABASE_URL: "${DATABASE_URL}" } hands one secret to the children on purpose).
        foreach (var (name, value) in configured)
        {
            environment[name] = value;
        }

        return environment;
    }

    /// <summary>The environment for one task; the shared base is returned as-is when the task adds nothing.</summary>
    public static IReadOnlyDictionary<string, string> ForTask(
        Dictionary<string, string> baseEnvironment, IReadOnlyDictionary<string, string> taskEnvironment)
    {
        if (taskEnvironment.Count == 0)
        {
            return baseEnvironment;
        }

        var environment = new Dictionary<string, string>(baseEnvironment, StringComparer.Ordinal);
        foreach (var (name, value) in taskEnvironment)
        {
            environment[name] = value;
        }

        return environment;
    }

    public static bool IsDenied(string name, IReadOnlyList<string> denyGlobs)
    {
        foreach (var glob in denyGlobs)
        {
            if (GlobMatches(glob, name))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Case-insensitive shell-style match of the whole name: <c>*</c> is any run of characters, <c>?</c> any one
    /// character, everything else literal.
    /// </summary>
    public static bool GlobMatches(string glob, string name)
    {
        // Greedy two-pointer match that backtracks only to the most recent '*', so it is linear-ish, never
        // exponential, whatever the pattern.
        int g = 0, n = 0, starGlob = -1, starName = 0;
        while (n < name.Length)
        {
            if (g < glob.Length && glob[g] == '*')
            {
                starGlob = g++;
                starName = n;
            }
            else if (g < glob.Length && (glob[g] == '?' || char.ToUpperInvariant(glob[g]) == char.ToUpperInvariant(name[n])))
            {
                g++;
                n++;
            }
            else if (starGlob >= 0)
            {
                g = starGlob + 1;
                n = ++starName;
            }
            else
            {
                return false;
            }
        }

        while (g < glob.Length && glob[g] == '*')
        {
            g++;
        }

        return g == glob.Length;
    }
}
