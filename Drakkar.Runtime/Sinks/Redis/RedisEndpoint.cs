using System.Globalization;

namespace Drakkar.Sinks.Redis;

/// <summary>A parsed <c>redis://[user:password@]host[:port][/db]</c> URL.</summary>
internal sealed record RedisEndpoint(string Host, int Port, string? User, string? Password, int Database)
{
    public static RedisEndpoint Parse(string url, string configPath)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "redis" || uri.Host.Length == 0)
            throw new SinkConfigurationException(
                $"{configPath}.url must look like redis://[user:password@]host[:port][/db], got '{SinkSecretMasker.Url(url)}'" +
                (url.StartsWith("rediss://", StringComparison.Ordinal) ? " (TLS is not supported by this sink)" : ""));
        string? user = null, password = null;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                // redis://secret@host is redis-py's spelling of a password without a user.
                password = Uri.UnescapeDataString(uri.UserInfo);
            }
            else
            {
                user = Uri.UnescapeDataString(uri.UserInfo[..colon]);
                password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
                if (user.Length == 0) user = null;
            }
        }
        var path = uri.AbsolutePath.Trim('/');
        var database = 0;
        if (path.Length > 0 && !int.TryParse(path, NumberStyles.None, CultureInfo.InvariantCulture, out database))
            throw new SinkConfigurationException($"{configPath}.url: the database after the host must be a number, got '/{path}'.");
        return new RedisEndpoint(uri.Host, uri.IsDefaultPort || uri.Port < 0 ? 6379 : uri.Port, user, password, database);
    }
}
