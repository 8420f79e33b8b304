using System.Text.RegularExpressions;

namespace Drakkar.Sinks;

/// <summary>
/// Keeps credentials out of every error, log line and DLQ record the sinks produce (SPEC S17): on top of
/// <see cref="SecretMasker"/>'s masking by shape (URL user info, DSN passwords, tokens), the values the configuration
/// holds as secrets (passwords, header values such as <c>Authorization</c>) are masked wherever they appear verbatim,
/// since driver messages sometimes echo them without any recognisable shape.
/// </summary>
internal sealed partial class SinkSecretMasker
{
    private const string Mask = "***";
    private volatile string[] _secrets = [];
    private readonly Lock _gate = new();

    /// <summary>Masks <paramref name="secret"/> wherever it appears from now on. Very short values are ignored: masking "a" would garble every message.</summary>
    public void Add(string? secret)
    {
        if (string.IsNullOrEmpty(secret) || secret.Length < 4) return;
        lock (_gate)
        {
            if (Array.IndexOf(_secrets, secret) >= 0) return;
            // Longest first, so a secret that contains another is masked whole.
            _secrets = [.. _secrets.Append(secret).OrderByDescending(s => s.Length)];
        }
    }

    /// <summary>Adds the password of a URL (<c>scheme://user:password@host</c>) or DSN (<c>Password=…</c>).</summary>
    public void AddCredentialsOf(string? urlOrDsn)
    {
        if (string.IsNullOrEmpty(urlOrDsn)) return;
        foreach (var password in SecretMasker.UrlPasswords(urlOrDsn))
        {
            Add(password);
            Add(Uri.UnescapeDataString(password));
        }
        foreach (Match m in DsnPassword().Matches(urlOrDsn)) Add(m.Groups["password"].Value.Trim());
    }

    public string Apply(string? text)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        var masked = SecretMasker.Mask(text);
        foreach (var secret in _secrets)
            masked = masked.Replace(secret, Mask, StringComparison.Ordinal);
        return masked;
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<DrakkarConfig, SinkSecretMasker> ByConfig = new();

    /// <summary>
    /// The masker of the worker that runs <paramref name="config"/>: the sink manager fills it as it builds the sinks, and
    /// the worker's logger masks every line with it, so a configured secret is masked wherever it appears verbatim
    /// (a task's stderr echoing a token), not only where a call site masks.
    /// </summary>
    public static SinkSecretMasker For(DrakkarConfig config) => ByConfig.GetValue(config, static _ => new SinkSecretMasker());

    /// <summary>Makes <paramref name="to"/> use the masker of <paramref name="from"/> (a configuration a hook returned in place of another).</summary>
    public static void Share(DrakkarConfig from, DrakkarConfig to) => ByConfig.AddOrUpdate(to, For(from));

    /// <summary>Masks credentials in a URL or DSN by shape only (for one-off log fields).</summary>
    public static string Url(string? urlOrDsn) => SecretMasker.Mask(urlOrDsn);

    [GeneratedRegex(@"(?<key>\b(?:password|pwd))\s*=\s*(?<password>[^;]*)", RegexOptions.IgnoreCase)]
    private static partial Regex DsnPassword();
}
