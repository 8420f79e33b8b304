using System.Globalization;

namespace Drakkar.Sinks.Mongo;

/// <summary>
/// A parsed <c>mongodb://[user:password@]host[:port][,host…][/authdb][?authSource=…&amp;authMechanism=…]</c>. The
/// sink talks to the first host (a standalone or the primary); <c>mongodb+srv</c> needs DNS SRV lookups and is refused.
/// </summary>
internal sealed record MongoEndpoint(string Host, int Port, string? User, string? Password, string AuthDatabase)
{
    public static MongoEndpoint Parse(string uri, string configPath)
    {
        const string scheme = "mongodb://";
        if (!uri.StartsWith(scheme, StringComparison.Ordinal))
            throw new SinkConfigurationException(
                $"{configPath}.uri must start with mongodb:// (mongodb+srv is not supported), got '{SinkSecretMasker.Url(uri)}'.");
        var rest = uri[scheme.Length..];
        var query = "";
        var questionMark = rest.IndexOf('?', StringComparison.Ordinal);
        if (questionMark >= 0)
        {
            query = rest[(questionMark + 1)..];
            rest = rest[..questionMark];
        }
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var path = slash >= 0 ? rest[(slash + 1)..] : "";
        var authority = slash >= 0 ? rest[..slash] : rest;
        string? user = null, password = null;
        var at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            var info = authority[..at];
            authority = authority[(at + 1)..];
            var colon = info.IndexOf(':', StringComparison.Ordinal);
            user = Uri.UnescapeDataString(colon >= 0 ? info[..colon] : info);
            password = colon >= 0 ? Uri.UnescapeDataString(info[(colon + 1)..]) : null;
            if (password is null)
                throw new SinkConfigurationException($"{configPath}.uri names user '{user}' without a password; SCRAM-SHA-256 needs both.");
        }
        var firstHost = authority.Split(',')[0];
        if (firstHost.Length == 0) throw new SinkConfigurationException($"{configPath}.uri has no host.");
        var port = 27017;
        var host = firstHost;
        var portColon = firstHost.LastIndexOf(':');
        if (portColon > 0 && !firstHost.EndsWith(']'))
        {
            host = firstHost[..portColon];
            if (!int.TryParse(firstHost[(portColon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
                throw new SinkConfigurationException($"{configPath}.uri has an invalid port in '{firstHost}'.");
        }
        host = host.Trim('[', ']');
        var authDatabase = path.Length > 0 ? Uri.UnescapeDataString(path) : "admin";
        foreach (var option in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = option.IndexOf('=', StringComparison.Ordinal);
            var key = equals >= 0 ? option[..equals] : option;
            var value = equals >= 0 ? Uri.UnescapeDataString(option[(equals + 1)..]) : "";
            if (key.Equals("authSource", StringComparison.OrdinalIgnoreCase)) authDatabase = value;
            else if (key.Equals("authMechanism", StringComparison.OrdinalIgnoreCase) && value != "SCRAM-SHA-256")
                throw new SinkConfigurationException($"{configPath}.uri asks for authMechanism={value}; this sink supports SCRAM-SHA-256 only.");
            else if (key.Equals("tls", StringComparison.OrdinalIgnoreCase) || key.Equals("ssl", StringComparison.OrdinalIgnoreCase))
            {
                if (value.Equals("true", StringComparison.OrdinalIgnoreCase))
                    throw new SinkConfigurationException($"{configPath}.uri asks for TLS, which this sink does not support.");
            }
        }
        return new MongoEndpoint(host, port, user, password, authDatabase);
    }
}
