using System.Globalization;
using System.Text.RegularExpressions;

namespace Drakkar.Configuration;

/// <summary>Value rules shared by the schema; each returns the problem text, or null when the value is fine.</summary>
internal static partial class ConfigRules
{
    public static Func<int, string?> AtLeast(int minimum) =>
        value => value >= minimum ? null : $"must be ≥ {minimum} (got {value})";

    public static Func<int, string?> Between(int minimum, int maximum) =>
        value => value < minimum ? $"must be ≥ {minimum} (got {value})"
            : value > maximum ? $"must be ≤ {maximum} (got {value})"
            : null;

    public static Func<int?, string?> AtLeastOrNull(int minimum) =>
        value => value is not { } number || number >= minimum ? null : $"must be ≥ {minimum} or null (got {number})";

    public static Func<double, string?> AtLeast(double minimum) =>
        value => value >= minimum ? null : $"must be ≥ {Show(minimum)} (got {Show(value)})";

    public static Func<double, string?> Above(double minimum) =>
        value => value > minimum ? null : $"must be > {Show(minimum)} (got {Show(value)})";

    public static Func<double?, string?> AtLeastOrNull(double minimum) =>
        value => value is not { } number || number >= minimum ? null : $"must be ≥ {Show(minimum)} or null (got {Show(number)})";

    public static string? NotEmpty(string value) => value.Trim().Length > 0 ? null : "must not be empty";

    /// <summary>An address a server can bind: an IP literal (<c>0.0.0.0</c>, <c>::</c>, <c>127.0.0.1</c>) or <c>localhost</c>.</summary>
    public static string? ListenAddress(string value) =>
        System.Net.IPAddress.TryParse(value.Trim(), out _) || value.Trim().Equals("localhost", StringComparison.OrdinalIgnoreCase)
            ? null
            : $"must be an IP address to listen on, e.g. 0.0.0.0 (every interface) or 127.0.0.1 (got '{value}')";

    public static string? NotEmptyOrNull(string? value) =>
        value is null || value.Trim().Length > 0 ? null : "must not be empty (leave it out, or null, when tasks name their own binary)";

    public static Func<string, string?> OneOf(params string[] allowed) =>
        value => allowed.Contains(value.Trim(), StringComparer.OrdinalIgnoreCase)
            ? null
            : $"must be one of {string.Join(", ", allowed)} (got '{value}')";

    public static Func<string, string?> UrlWithScheme(params string[] schemes) =>
        value =>
        {
            if (value.Length == 0) return null;
            if (Uri.TryCreate(value, UriKind.Absolute, out var uri)
                && schemes.Contains(uri.Scheme, StringComparer.OrdinalIgnoreCase)
                && (uri.Host.Length > 0 || uri.Scheme == "unix"))
                return null;
            return $"must be a {string.Join(" or ", schemes.Select(s => s + "://"))} URL with a host (got '{SecretMasker.Mask(value)}')";
        };

    /// <summary>The HTTP sink's URL: http(s), a host, and never a cloud metadata endpoint or link-local address.</summary>
    public static string? HttpSinkUrl(string value)
    {
        if (value.Length == 0) return null;
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri))
            return $"must be an absolute http:// or https:// URL with a host (got '{SecretMasker.Mask(value)}')";
        if (uri.Scheme is not ("http" or "https"))
            return $"must use http:// or https://, got '{uri.Scheme}://'";
        return Sinks.Http.HttpEgress.RefusedHost(uri) is { } host
            ? $"host '{host}' is a cloud metadata endpoint or link-local address; sending data there can leak cloud credentials, so it is refused"
            : null;
    }

    public static bool IsSqlIdentifier(string value) => SqlIdentifier().IsMatch(value);

    // The same rule the PostgreSQL sink applies to table and column names (S9), so a bad key fails at load.
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*\z", RegexOptions.CultureInvariant)]
    private static partial Regex SqlIdentifier();

    private static string Show(double value) => value.ToString(CultureInfo.InvariantCulture);
}
