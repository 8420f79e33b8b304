using System.Text.RegularExpressions;
using Drakkar.Configuration;

namespace Drakkar;

/// <summary>
/// Hides credentials before text reaches logs, metrics, errors, the DLQ or <c>check-config</c> output (S17).
/// Masking keeps the shape (scheme, user, host, key names) so the text still helps someone debugging it.
/// </summary>
public static partial class SecretMasker
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
        var masked = UrlUserInfo().Replace(text, static match =>
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

    /// <summary>Whether a key, header or variable name says its value is a secret (password, token, *key, secret…).</summary>
    public static bool IsSecretName(string name)
    {
        var lower = name.Trim().ToLowerInvariant();
        return lower.Contains("password", StringComparison.Ordinal)
               || lower.Contains("passwd", StringComparison.Ordinal)
               || lower.Contains("pwd", StringComparison.Ordinal)
               || lower.Contains("secret", StringComparison.Ordinal)
               || lower.Contains("token", StringComparison.Ordinal)
               || lower.Contains("credential", StringComparison.Ordinal)
               || lower.Contains("authorization", StringComparison.Ordinal)
               || lower.Contains("cookie", StringComparison.Ordinal)
               || lower.Contains("apikey", StringComparison.Ordinal)
               || lower.Contains("api_key", StringComparison.Ordinal)
               || lower.Contains("api-key", StringComparison.Ordinal)
               || lower.Contains("private", StringComparison.Ordinal)
               || lower.EndsWith("key", StringComparison.Ordinal)
               || lower.EndsWith("dsn", StringComparison.Ordinal)
               || lower is "pass" or "auth" or "sig" or "signature";
    }

    private static string MaskPair(Match match) =>
        IsSecretName(match.Groups["key"].Value) && match.Groups["value"].Length > 0
            ? $"{match.Groups["head"].Value}{Masked}"
            : match.Value;

    // scheme://userinfo@ — greedy up to the last '@' before the path, so an unescaped '@' in a password is covered.
    [GeneratedRegex(@"(?<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?<userinfo>[^/?#\s]*)@", RegexOptions.CultureInvariant)]
    private static partial Regex UrlUserInfo();

    // Npgsql/ADO.NET style "Key=value;": an unquoted value runs to the next ';' (it may contain spaces).
    [GeneratedRegex(@"(?<head>(?:^|;)\s*(?<key>[A-Za-z][A-Za-z0-9 _]*?)\s*=\s*)(?<value>'(?:[^']|'')*'|""(?:[^""]|"""")*""|[^;]*)",
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
