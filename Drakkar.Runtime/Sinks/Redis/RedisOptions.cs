using System.Globalization;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace Drakkar.Sinks.Redis;

/// <summary>
/// Turns a <c>sinks.redis.&lt;name&gt;</c> section into StackExchange.Redis options. The URL follows redis-py's
/// spellings, so a Drakkar (Python) configuration carries over: <c>redis://[[user]:password@]host[:port][/db]</c>,
/// <c>rediss://…</c> for TLS, <c>unix://[[user]:password@]/path/redis.sock[?db=N]</c>.
/// </summary>
internal static class RedisOptions
{
    private const int DefaultPort = 6379;
    private const int DefaultSentinelPort = 26379;

    public static ConfigurationOptions From(RedisSinkConfig config, string configPath)
    {
        try
        {
            return Build(config);
        }
        catch (RefusedException refused)
        {
            throw new SinkConfigurationException($"{configPath}.{refused.Key}: {refused.Message}");
        }
    }

    /// <summary>
    /// What <see cref="From"/> would refuse in <paramref name="config"/>, as the key and the reason; null when nothing.
    /// <c>check-config</c> reports it, so a URL <c>run</c> cannot use does not pass the check.
    /// </summary>
    public static (string Key, string Reason)? Problem(RedisSinkConfig config)
    {
        try
        {
            Build(config);
            return null;
        }
        catch (RefusedException refused)
        {
            return (refused.Key, refused.Message);
        }
    }

    private static ConfigurationOptions Build(RedisSinkConfig config)
    {
        var url = config.Url;
        var options = new ConfigurationOptions
        {
            // Startup fails fast, naming the sink (SPEC S7); once connected, the multiplexer reconnects on its own.
            AbortOnConnectFail = true,
            // No GET of a tie-breaker key and no pub/sub channel of its own: a writer needs neither, and an ACL user
            // limited to SET on its key prefix could run neither.
            TieBreaker = "",
            ConfigurationChannel = "",
            // While no server is connected a SET fails at once as transient, so the delivery engine's fast retries,
            // OnDeliveryError and circuit breaker see the outage as it happens (SPEC S4–S6) instead of each batch
            // waiting out the client's timeout in its backlog.
            BacklogPolicy = BacklogPolicy.FailFast,
        };
        var sentinel = config.SentinelService.Length > 0;
        if (sentinel) options.ServiceName = config.SentinelService;

        string? userInfo;
        string? query = null;
        if (url.StartsWith("unix://", StringComparison.OrdinalIgnoreCase))
        {
            var rest = url["unix://".Length..];
            var questionMark = rest.IndexOf('?', StringComparison.Ordinal);
            if (questionMark >= 0)
            {
                query = rest[(questionMark + 1)..];
                rest = rest[..questionMark];
            }
            var at = rest.LastIndexOf('@');
            userInfo = at >= 0 ? rest[..at] : null;
            var path = Uri.UnescapeDataString(at >= 0 ? rest[(at + 1)..] : rest);
            if (!path.StartsWith('/'))
                throw Invalid(url, "a unix:// URL names the socket by its absolute path, e.g. unix:///run/redis/redis.sock");
            options.EndPoints.Add(new UnixDomainSocketEndPoint(path));
        }
        else
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("redis" or "rediss") || uri.Host.Length == 0)
                throw Invalid(url, "");
            options.Ssl = uri.Scheme == "rediss";
            userInfo = uri.UserInfo.Length > 0 ? uri.UserInfo : null;
            options.EndPoints.Add(uri.IdnHost, uri.Port > 0 ? uri.Port : sentinel ? DefaultSentinelPort : DefaultPort);
            var path = uri.AbsolutePath.Trim('/');
            if (path.Length > 0) options.DefaultDatabase = Database(path, $"the database after the host must be a number, got '/{path}'");
            query = uri.Query.TrimStart('?');
        }
        if (!string.IsNullOrEmpty(query))
        {
            foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var (key, value) = pair.IndexOf('=', StringComparison.Ordinal) is var eq and >= 0 ? (pair[..eq], pair[(eq + 1)..]) : (pair, "");
                if (key != "db")
                    throw new RefusedException("url", $"unknown query parameter '{key}'; only ?db=N is understood (credentials go before the host, TLS is the rediss:// scheme, client options such as abortConnect are Drakkar's own)");
                options.DefaultDatabase = Database(value, $"?db= must be a number, got '{value}'");
            }
        }

        if (userInfo is not null)
        {
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                // redis://secret@host is redis-py's spelling of a password without a user.
                options.Password = Uri.UnescapeDataString(userInfo);
            }
            else
            {
                var user = Uri.UnescapeDataString(userInfo[..colon]);
                if (user.Length > 0) options.User = user;
                options.Password = Uri.UnescapeDataString(userInfo[(colon + 1)..]);
            }
        }

        foreach (var endpoint in config.Endpoints)
        {
            var parsed = EndPointCollection.TryParse(endpoint)
                ?? throw new RefusedException("endpoints", $"'{endpoint}' is not host:port");
            options.EndPoints.Add(parsed);
        }

        if (config.TlsCaFile.Length > 0)
        {
            if (!options.Ssl)
                throw new RefusedException("tls_ca_file", "is set but the url is not rediss://; use rediss:// to connect over TLS");
            if (!File.Exists(config.TlsCaFile))
                throw new RefusedException("tls_ca_file", $"'{config.TlsCaFile}' does not exist");
            options.TrustIssuer(config.TlsCaFile);
        }
        return options;
    }

    /// <summary>The servers as error messages and logs name them, e.g. <c>Redis at 10.0.0.5:6379</c>.</summary>
    public static string Describe(ConfigurationOptions options) =>
        "Redis at " + string.Join(", ", options.EndPoints.Select(Describe)) + (options.ServiceName is { } service ? $" (sentinel service {service})" : "");

    public static string Describe(EndPoint? endpoint) => endpoint switch
    {
        null => "?",
        UnixDomainSocketEndPoint unix => "unix:" + unix,
        _ => EndPointCollection.ToString(endpoint),
    };

    private static int Database(string text, string problem) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var database)
            ? database
            : throw new RefusedException("url", problem);

    private static RefusedException Invalid(string url, string hint) => new("url",
        $"must look like redis://[user:password@]host[:port][/db], rediss://… (TLS) or unix:///path/redis.sock[?db=N], got '{SinkSecretMasker.Url(url)}'" +
        (hint.Length > 0 ? $"; {hint}" : ""));

    /// <summary>A key of the sink's section that cannot be used, and why.</summary>
    private sealed class RefusedException(string key, string reason) : Exception(reason)
    {
        public string Key { get; } = key;
    }
}
