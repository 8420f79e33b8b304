using System.Text;

namespace Drakkar.Configuration;

/// <summary>
/// Expands <c>${VAR}</c> and <c>${VAR:-default}</c> inside file values, the way a shell would: the default applies
/// when the variable is unset or empty. <c>$${</c> writes a literal <c>${</c>, so a value can contain the sequence.
/// </summary>
internal static class VariableExpander
{
    /// <returns>The expanded text, or null with <paramref name="error"/> set.</returns>
    public static string? Expand(string text, IReadOnlyDictionary<string, string?> environment, out string? error)
    {
        error = null;
        if (!text.Contains('$', StringComparison.Ordinal)) return text;

        var result = new StringBuilder(text.Length);
        var index = 0;
        while (index < text.Length)
        {
            var dollar = text.IndexOf('$', index);
            if (dollar < 0)
            {
                result.Append(text, index, text.Length - index);
                break;
            }
            result.Append(text, index, dollar - index);

            if (text.AsSpan(dollar).StartsWith("$${", StringComparison.Ordinal))
            {
                result.Append("${");
                index = dollar + 3;
                continue;
            }
            if (!text.AsSpan(dollar).StartsWith("${", StringComparison.Ordinal))
            {
                result.Append('$');
                index = dollar + 1;
                continue;
            }

            var close = text.IndexOf('}', dollar + 2);
            if (close < 0)
            {
                error = $"unterminated '${{' in '{SecretMasker.Mask(text)}' (write '$${{' for a literal '${{')";
                return null;
            }
            var body = text.AsSpan(dollar + 2, close - dollar - 2);
            var separator = body.IndexOf(":-", StringComparison.Ordinal);
            var name = (separator < 0 ? body : body[..separator]).ToString();
            if (!IsVariableName(name))
            {
                error = $"'${{{body}}}' does not name an environment variable (letters, digits and '_', not starting with a digit)";
                return null;
            }

            environment.TryGetValue(name, out var value);
            if (separator >= 0)
            {
                result.Append(string.IsNullOrEmpty(value) ? body[(separator + 2)..] : value);
            }
            else if (value is null)
            {
                error = $"environment variable '{name}' is not set and has no default (write ${{{name}:-value}} to give one)";
                return null;
            }
            else
            {
                result.Append(value);
            }
            index = close + 1;
        }
        return result.ToString();
    }

    private static bool IsVariableName(string name)
    {
        if (name.Length == 0 || char.IsAsciiDigit(name[0])) return false;
        foreach (var c in name)
            if (!char.IsAsciiLetterOrDigit(c) && c != '_') return false;
        return true;
    }
}
