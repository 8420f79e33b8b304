using System.Text.RegularExpressions;
using Drakkar.Configuration;

namespace Drakkar;

/// <summary>
/// Hides credentials before text reaches logs, metrics, errors, the DLQ or <c>check-config</c> output (S17).
/// Masking keeps the shape (scheme, user, host, key names) so the text still helps someone debugging it.
/// </summary>
internal static partial class SecretMasker
{
    /// <summary>What a hidden value is replaced with.</summary>
    public const string Masked = "***";

    /// <summary>
    /// Masks credentials inside <paramref name="text"/>: URL user info (<c>redis://user:pass@host</c> →
    /// <c>redis://user:***@host</c>; a lone user part, often a token, becomes <c>***</c>), secret-named DSN and
    /// query parameters (<c>Password=…;</c>, <c>?token=…</c>, libpq <c>password=…</c>), JSON members named like
    /// secrets, and <c>Bearer</c>/<c>Basic</c> credentials.
    /// </summary>
    public static string Mask(string? text)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        var masked = UrlPassword().Replace(text, static match => $"{match.Groups["head"].Value}{Masked}@");
        masked = UrlUserInfo().Replace(masked, static match =>
        {
            var userInfo = match.Groups["userinfo"].Value;
            if (userInfo.Length == 0) return match.Value;
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            var shown = colon >= 0 ? $"{userInfo[..colon]}:{Masked}" : Masked;
            return $"{match.Groups["scheme"].Value}{shown}@";
        });
        masked = SemicolonPair().Replace(masked, MaskPair);
        masked = QueryOrSpacePair().Replace(masked, MaskPair);
        masked = JsonMember().Replace(masked, static match =>
            IsSecretName(match.Groups["key"].Value) ? $"{match.Groups["head"].Value}\"{Masked}\"" : match.Value);
        return AuthorizationCredential().Replace(masked, static match => $"{match.Groups["scheme"].Value} {Masked}");
    }

    /// <summary>
    /// The effective configuration as YAML, every secret masked: URL/DSN credentials in every string (dsn, uri, url,
    /// brokers…), whole values of secret-named map entries (HTTP headers such as <c>Authorization</c> or
    /// <c>X-Api-Key</c>, executor env vars such as <c>DB_PASSWORD</c>, plugin settings) and <c>debug.auth_token</c>.
    /// </summary>
    public static string ToMaskedYaml(DrakkarConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        using var text = new StringWriter();
        var writer = new ConfigYamlWriter(text);
        DrakkarConfigSchema.Root.Write(config, writer);
        writer.Finish();
        return text.ToString();
    }

    /// <summary>
    /// The passwords written into URLs inside <paramref name="text"/> (<c>scheme://user:password@host</c>), as they
    /// appear there (still percent-encoded), including passwords that contain <c>?</c>, <c>#</c>, <c>/</c> or <c>@</c>.
    /// </summary>
    internal static IEnumerable<string> UrlPasswords(string text)
    {
        foreach (Match match in UrlPassword().Matches(text)) yield return match.Groups["password"].Value;
        foreach (Match match in UrlUserInfo().Matches(text))
        {
            var userInfo = match.Groups["userinfo"].Value;
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0) yield return userInfo[(colon + 1)..];
        }
    }

    /// <summary>
    /// Whether a key, header or variable name says its value is a secret. The one rule for everything that hides
    /// values by name: <c>check-config</c> output, JSON members and query parameters in logs and errors, and the
    /// parent variables a child process does not inherit. It matches names containing password, passwd, pwd, secret,
    /// token, credential, authorization, cookie, apikey/api_key/api-key, private, signature or connection string;
    /// names ending in key, dsn or pass; names with a word auth, sig or pat; and names of more than one word ending
    /// in url or uri (<c>DATABASE_URL</c>, <c>MONGODB_URI</c>; a bare <c>url</c> stays readable).
    /// </summary>
    public static bool IsSecretName(string name)
    {
        var lower = name.Trim().ToLowerInvariant();
        foreach (var part in SecretParts)
        {
            if (lower.Contains(part, StringComparison.Ordinal)) return true;
        }

        if (lower.EndsWith("key", StringComparison.Ordinal) || lower.EndsWith("dsn", StringComparison.Ordinal)
            || lower.EndsWith("pass", StringComparison.Ordinal))
            return true;
        var words = lower.Split(WordSeparators, StringSplitOptions.RemoveEmptyEntries);
        foreach (var word in words)
        {
            if (word is "auth" or "sig" or "pat") return true;
        }

        return words.Length > 1 && words[^1] is "url" or "uri";
    }

    private static readonly string[] SecretParts =
    [
        "password", "passwd", "pwd", "secret", "token", "credential", "authorization", "cookie", "apikey", "api_key",
        "api-key", "private", "signature", "authenticat", "connection_string", "connectionstring", "connstr", "conn_str",
    ];

    private static readonly char[] WordSeparators = ['_', '-', '.', ' '];

    private static string MaskPair(Match match) =>
        IsSecretName(match.Groups["key"].Value) && match.Groups["value"].Length > 0
            ? $"{match.Groups["head"].Value}{Masked}"
            : match.Value;

    // scheme://user:password@host where the password holds characters that end a URL's authority ('/', '?', '#')
    // or an '@': the password runs to the first '@' that is followed by something shaped like a host and the end
    // of the authority. A port ("host:8080/…@…") is not taken for a password.
    [GeneratedRegex(@"(?<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?!\d*(?:[/?#\s]|$))(?<password>\S*?)@(?=(?:[A-Za-z0-9\-._~%]*|\[[0-9A-Fa-f:.]*\])(?:[:/?#\s""',;)]|$))",
        RegexOptions.CultureInvariant)]
    private static partial Regex UrlPassword();

    // scheme://userinfo@ — greedy up to the last '@' before the path, so an unescaped '@' in a password is covered.
    [GeneratedRegex(@"(?<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?<userinfo>[^/?#\s]*)@", RegexOptions.CultureInvariant)]
    private static partial Regex UrlUserInfo();

    // Npgsql/ADO.NET style "Key=value;": an unquoted value runs to the next ';' or the end of the line (it may contain
    // spaces; a connection string has no line breaks, and a task's output masked to its next ';' lost whole lines).
    [GeneratedRegex(@"(?<head>(?:^|;)\s*(?<key>[A-Za-z][A-Za-z0-9 _]*?)\s*=\s*)(?<value>'(?:[^']|'')*'|""(?:[^""]|"""")*""|[^;\r\n]*)",
        RegexOptions.CultureInvariant)]
    private static partial Regex SemicolonPair();

    // URL query parameters (?token=…&) and libpq "key=value key=value" strings.
    [GeneratedRegex(@"(?<head>(?:^|[?&\s(,])(?<key>[A-Za-z][A-Za-z0-9_.\-]*)\s*=\s*)(?<value>'(?:[^'\\]|\\.)*'|""(?:[^""\\]|\\.)*""|[^&\s;,)#]*)",
        RegexOptions.CultureInvariant)]
    private static partial Regex QueryOrSpacePair();

    [GeneratedRegex(@"(?<head>""(?<key>[^""\\]{1,64})""\s*:\s*)""(?:[^""\\]|\\.)*""", RegexOptions.CultureInvariant)]
    private static partial Regex JsonMember();

    [GeneratedRegex(@"\b(?<scheme>Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex AuthorizationCredential();
}
