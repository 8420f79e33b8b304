using System.Text;
using Npgsql;

namespace Drakkar.Sinks.Postgres;

/// <summary>
/// <c>sinks.postgres.*.dsn</c> in either form PostgreSQL clients take: Npgsql's <c>Key=Value;…</c> connection string,
/// or a libpq URI, <c>postgresql://user:password@host:port/database?sslmode=require</c>, which is what Python
/// Drakkar's configurations hold (asyncpg takes it) and Npgsql does not parse. A URI becomes the equivalent
/// connection string.
/// </summary>
internal static class PostgresDsn
{
    // libpq URI parameters and the Npgsql keywords they become; anything else is refused by name.
    private static readonly Dictionary<string, string> Parameters = new(StringComparer.Ordinal)
    {
        ["host"] = "Host", ["hostaddr"] = "Host", ["port"] = "Port", ["user"] = "Username", ["password"] = "Password",
        ["dbname"] = "Database", ["connect_timeout"] = "Timeout", ["application_name"] = "Application Name",
        ["options"] = "Options", ["sslmode"] = "SSL Mode", ["sslrootcert"] = "Root Certificate",
        ["sslcert"] = "SSL Certificate", ["sslkey"] = "SSL Key", ["sslpassword"] = "SSL Password",
        ["passfile"] = "Passfile", ["target_session_attrs"] = "Target Session Attributes",
        ["keepalives_idle"] = "Tcp Keepalive Time", ["client_encoding"] = "Client Encoding",
    };

    /// <summary>The URI query parameters understood (libpq's names).</summary>
    public static IEnumerable<string> UriParameters => Parameters.Keys;

    /// <summary>The Npgsql connection string for <paramref name="dsn"/>.</summary>
    /// <exception cref="ArgumentException">It is neither a valid connection string nor a valid URI (the message says what is wrong, without the password).</exception>
    public static string ToConnectionString(string dsn)
    {
        var text = dsn.Trim();
        var scheme = text.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) ? "postgresql://"
            : text.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) ? "postgres://" : null;
        if (scheme is null)
        {
            _ = new NpgsqlConnectionStringBuilder(text);
            return text;
        }
        var builder = new NpgsqlConnectionStringBuilder();
        var rest = text[scheme.Length..];
        var query = "";
        if (rest.IndexOf('?') is var q and >= 0) (rest, query) = (rest[..q], rest[(q + 1)..]);
        var path = "";
        if (rest.IndexOf('/') is var slash and >= 0) (rest, path) = (rest[..slash], rest[(slash + 1)..]);
        if (rest.LastIndexOf('@') is var at and >= 0)
        {
            var userInfo = rest[..at];
            rest = rest[(at + 1)..];
            var colon = userInfo.IndexOf(':');
            Set(builder, "Username", Decode(colon < 0 ? userInfo : userInfo[..colon]));
            if (colon >= 0) Set(builder, "Password", Decode(userInfo[(colon + 1)..]));
        }
        if (rest.Contains(',')) Set(builder, "Host", Hosts(rest));
        else if (rest.Length > 0)
        {
            // One host: its port, if any, is the Port setting ([IPv6]:port, or host:port).
            var close = rest.StartsWith('[') ? rest.IndexOf(']') : -1;
            var colon = rest.IndexOf(':', close + 1);
            var host = colon < 0 ? rest : rest[..colon];
            Set(builder, "Host", Decode(close > 0 ? host[1..close] : host));
            if (colon >= 0) Set(builder, "Port", rest[(colon + 1)..]);
        }
        if (path.Length > 0) Set(builder, "Database", Decode(path));
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=');
            var key = Decode(equals < 0 ? pair : pair[..equals]);
            var value = equals < 0 ? "" : Decode(pair[(equals + 1)..]);
            if (!Parameters.TryGetValue(key, out var keyword))
                throw new ArgumentException($"the URI parameter '{key}' is not one Drakkar for .NET maps to Npgsql " +
                    $"(known: {string.Join(", ", Parameters.Keys)}); use a Key=Value connection string for other Npgsql settings");
            Set(builder, keyword, keyword == "SSL Mode" ? SslMode(value) : value);
        }
        return builder.ConnectionString;
    }

    /// <summary>Null when <paramref name="dsn"/> is valid, else why not (for configuration checks).</summary>
    public static string? Problem(string dsn)
    {
        try
        {
            // Npgsql takes any number as the port and refuses it only when connecting, without naming the setting.
            var port = new NpgsqlConnectionStringBuilder(ToConnectionString(dsn)).Port;
            return port is >= 1 and <= 65535 ? null : $"the port {port} is not between 1 and 65535";
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
    }

    private static void Set(NpgsqlConnectionStringBuilder builder, string keyword, string value)
    {
        if (value.Length == 0) return;
        try
        {
            builder[keyword] = value;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException)
        {
            throw new ArgumentException($"the URI's {keyword} '{(keyword == "Password" ? "***" : value)}' is not valid: {e.Message}", e);
        }
    }

    // host1:port1,host2:port2, with [IPv6] literals unbracketed: Npgsql's Host takes the same list.
    private static string Hosts(string authority)
    {
        var hosts = new StringBuilder();
        foreach (var host in authority.Split(','))
        {
            if (hosts.Length > 0) hosts.Append(',');
            hosts.Append(Decode(host.StartsWith('[') && host.IndexOf(']') is var end and > 0 ? host[1..end] + host[(end + 1)..] : host));
        }
        return hosts.ToString();
    }

    // libpq's sslmode values (verify-ca, verify-full) as Npgsql's SslMode names.
    private static string SslMode(string value) => value switch
    {
        "verify-ca" => "VerifyCA",
        "verify-full" => "VerifyFull",
        _ => value,
    };

    private static string Decode(string text) => Uri.UnescapeDataString(text);
}
