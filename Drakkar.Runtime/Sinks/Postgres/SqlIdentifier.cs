using System.Text.RegularExpressions;

namespace Drakkar.Sinks.Postgres;

/// <summary>
/// SQL identifiers come from payloads and config, so they are never trusted: only <c>^[A-Za-z_][A-Za-z0-9_]*\z</c>
/// of at most 63 characters passes (no quotes, semicolons, dots, spaces or non-ASCII; PostgreSQL would cut a longer
/// name to 63 bytes and address another column), and what passes is double-quoted.
/// </summary>
internal static partial class SqlIdentifier
{
    public static bool IsValid(string? name) => name is not null && name.Length <= 63 && Pattern().IsMatch(name);

    /// <summary>Returns the quoted identifier or throws naming <paramref name="what"/>.</summary>
    public static string Quote(string name, string what) =>
        IsValid(name)
            ? $"\"{name}\""
            : throw new SinkDeliveryException(
                $"Invalid SQL identifier for {what}: '{name}'. Identifiers must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 63 characters); nothing was executed.");

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*\z", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
