using System.Globalization;
using System.Text.RegularExpressions;

namespace Drakkar.Configuration;

/// <summary>
/// A value rule: <see cref="Check"/> returns the problem text, or null when the value is fine; <see cref="Text"/> is
/// how docs/configuration.md states the rule in its "allowed" column.
/// </summary>
internal sealed record ConfigRule<TValue>(Func<TValue, string?> Check, string Text);

/// <summary>Value rules shared by the schema.</summary>
internal static partial class ConfigRules
{
    public static ConfigRule<int> AtLeast(int minimum) =>
        new(value => value >= minimum ? null : $"must be ≥ {minimum} (got {value})", $"≥ {minimum}");

    public static ConfigRule<int> Between(int minimum, int maximum) =>
        new(value => value < minimum ? $"must be ≥ {minimum} (got {value})"
                : value > maximum ? $"must be ≤ {maximum} (got {value})"
                : null,
            $"{minimum}–{maximum}");

    public static ConfigRule<int> AtMost(int maximum) =>
        new(value => value <= maximum ? null : $"must be ≤ {maximum} (got {value})", $"≤ {maximum}");

    public static ConfigRule<int?> AtLeastOrNull(int minimum) =>
        new(value => value is not { } number || number >= minimum ? null : $"must be ≥ {minimum} or null (got {number})",
            $"≥ {minimum}, or `null`");

    public static ConfigRule<double> AtLeast(double minimum) =>
        new(value => value >= minimum ? null : $"must be ≥ {Show(minimum)} (got {Show(value)})", $"≥ {Show(minimum)}");

    public static ConfigRule<double> Above(double minimum) =>
        new(value => value > minimum ? null : $"must be > {Show(minimum)} (got {Show(value)})", $"> {Show(minimum)}");

    public static ConfigRule<double> AtMost(double maximum) =>
        new(value => value <= maximum ? null : $"must be ≤ {Show(maximum)} (got {Show(value)})", $"≤ {Show(maximum)}");

    /// <summary>
    /// The longest delay, in seconds, that .NET's timers, <c>Task.Delay</c> and <c>CancelAfter</c> take (2³² − 2 ms, about
    /// 49.7 days); they throw beyond it.
    /// </summary>
    public const double MaxTimerSeconds = 4_294_967;

    /// <summary>At most <see cref="MaxTimerSeconds"/>: for every key that is a duration in seconds.</summary>
    public static readonly ConfigRule<double> TimerSeconds = new(
        value => value <= MaxTimerSeconds ? null : $"must be ≤ {Show(MaxTimerSeconds)} (about 49.7 days, the longest delay a timer takes) (got {Show(value)})",
        $"≤ {Show(MaxTimerSeconds)}");

    /// <summary><see cref="TimerSeconds"/> for a key in whole seconds.</summary>
    public static readonly ConfigRule<int> WholeTimerSeconds = new(value => TimerSeconds.Check(value), TimerSeconds.Text);

    /// <summary>At most 100 years, for a key in hours: a time that far back is still a date (retention_hours of a few billion threw).</summary>
    public static readonly ConfigRule<int> CenturyOfHours = new(value => CenturyCheck(value), CenturyText);

    /// <summary><see cref="CenturyOfHours"/> for a key in hours that may be null (null passes).</summary>
    public static readonly ConfigRule<double?> CenturyOfHoursOrNull = new(value => value is { } hours ? CenturyCheck(hours) : null, CenturyText);

    private const string CenturyText = "≤ 876000 (100 years)";

    private static string? CenturyCheck(double hours) => hours <= 876_000 ? null : $"must be ≤ 876000 (100 years) (got {Show(hours)})";

    /// <summary>
    /// The longest timeout, in seconds, that <c>HttpClient.Timeout</c> takes (<c>int.MaxValue</c> milliseconds, about 24.8
    /// days): shorter than <see cref="MaxTimerSeconds"/>.
    /// </summary>
    public const int MaxHttpClientSeconds = 2_147_483;

    /// <summary>The shortest interval of a loop that waits between runs: shorter ones are zero to the timers, and the loop spins.</summary>
    public const double MinIntervalSeconds = 0.001;

    public static ConfigRule<double?> AtLeastOrNull(double minimum) =>
        new(value => value is not { } number || number >= minimum ? null : $"must be ≥ {Show(minimum)} or null (got {Show(number)})",
            $"≥ {Show(minimum)}, or `null`");

    public static readonly ConfigRule<string> NotEmpty =
        new(value => value.Trim().Length > 0 ? null : "must not be empty", "not empty");

    /// <summary>An address a server can bind: an IP literal (<c>0.0.0.0</c>, <c>::</c>, <c>127.0.0.1</c>) or <c>localhost</c>.</summary>
    public static readonly ConfigRule<string> ListenAddress = new(
        value => System.Net.IPAddress.TryParse(value.Trim(), out _) || value.Trim().Equals("localhost", StringComparison.OrdinalIgnoreCase)
            ? null
            : $"must be an IP address to listen on or localhost, e.g. 0.0.0.0 (every interface) or 127.0.0.1 (got '{value}')",
        "an IP address or `localhost`");

    public static readonly ConfigRule<string?> NotEmptyOrNull = new(
        value => value is null || value.Trim().Length > 0 ? null : "must not be empty (leave it out, or null, when tasks name their own binary)",
        "not empty when given");

    public static ConfigRule<string> OneOf(params string[] allowed) =>
        new(value => allowed.Contains(value.Trim(), StringComparer.OrdinalIgnoreCase)
                ? null
                : $"must be one of {string.Join(", ", allowed)} (got '{value}')",
            string.Join(", ", allowed.Select(name => $"`{name}`")) + " (any case)");

    /// <summary><paramref name="rule"/>, except that the empty string (the key left unset) always passes.</summary>
    public static ConfigRule<string> EmptyOr(ConfigRule<string> rule) =>
        new(value => value.Length == 0 ? null : rule.Check(value), "empty or " + rule.Text);

    public static ConfigRule<string> UrlWithScheme(params string[] schemes) =>
        new(value =>
            {
                if (value.Length == 0) return null;
                if (Uri.TryCreate(value, UriKind.Absolute, out var uri)
                    && schemes.Contains(uri.Scheme, StringComparer.OrdinalIgnoreCase)
                    && (uri.Host.Length > 0 || uri.Scheme == "unix"))
                    return null;
                return $"must be a {string.Join(" or ", schemes.Select(s => s + "://"))} URL with a host (got '{SecretMasker.Mask(value)}'){PortProblem(value)}";
            },
            $"{string.Join(" or ", schemes.Select(s => $"`{s}://`"))} URL with a host");

    /// <summary>
    /// Why a URL that does not parse was refused, when it is its port (<c>:580800</c>, <c>:80a</c>): the general
    /// message alone leaves the reader to find it. Empty otherwise.
    /// </summary>
    internal static string PortProblem(string url)
    {
        var start = url.IndexOf("://", StringComparison.Ordinal);
        if (start < 0) return "";
        var authority = url[(start + 3)..];
        if (authority.IndexOfAny(['/', '?', '#']) is var end and >= 0) authority = authority[..end];
        authority = authority[(authority.LastIndexOf('@') + 1)..];
        var colon = authority.LastIndexOf(':');
        if (colon < 0 || authority.EndsWith(']')) return "";
        var port = authority[(colon + 1)..];
        if (port.Length == 0) return "";
        if (!port.All(char.IsAsciiDigit)) return $": its port '{port}' is not a number";
        return int.TryParse(port, System.Globalization.CultureInfo.InvariantCulture, out var number) && number is >= 1 and <= 65535
            ? ""
            : $": its port {port} is not between 1 and 65535";
    }

    /// <summary>The HTTP sink's URL: http(s), a host, and never a cloud metadata endpoint or link-local address.</summary>
    public static readonly ConfigRule<string> HttpSinkUrl = new(
        value =>
        {
            if (value.Length == 0) return null;
            if (!Uri.TryCreate(value, UriKind.Absolute, out var uri))
                return $"must be an absolute http:// or https:// URL with a host (got '{SecretMasker.Mask(value)}'){PortProblem(value)}";
            if (uri.Scheme is not ("http" or "https"))
                return $"must use http:// or https://, got '{uri.Scheme}://'";
            return Sinks.Http.HttpEgress.RefusedHost(uri) is { } host
                ? $"host '{host}' is a cloud metadata endpoint or link-local address; sending data there can leak cloud credentials, so it is refused"
                : null;
        },
        "`http://` or `https://` URL with a host; not a cloud metadata host");

    // The rule the PostgreSQL sink applies to table and column names (S9), so a bad key fails at load.
    public static bool IsSqlIdentifier(string value) => Sinks.Postgres.SqlIdentifier.IsValid(value);

    private static string Show(double value) => value.ToString(CultureInfo.InvariantCulture);
}
