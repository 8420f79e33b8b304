using System.Net;
using System.Net.Sockets;
using Drakkar.Sinks;
using Drakkar.Sinks.Redis;

namespace Drakkar.Runtime.Tests.Sinks;

/// <summary>How a <c>sinks.redis.&lt;name&gt;</c> section becomes client options (redis-py's URL spellings).</summary>
public sealed class RedisOptionsTests
{
    private const string Path = "sinks.redis.cache";

    [Fact]
    public void A_redis_url_gives_host_port_user_password_and_database()
    {
        var options = RedisOptions.From(new RedisSinkConfig { Url = "redis://writer:p%40ss@cache.internal:6380/4" }, Path);

        var endpoint = Assert.IsType<DnsEndPoint>(Assert.Single(options.EndPoints));
        Assert.Equal(("cache.internal", 6380), (endpoint.Host, endpoint.Port));
        Assert.Equal(("writer", "p@ss", 4, false), (options.User, options.Password, options.DefaultDatabase, options.Ssl));
    }

    [Fact]
    public void A_lone_user_part_is_a_password_and_rediss_turns_tls_on()
    {
        var options = RedisOptions.From(new RedisSinkConfig { Url = "rediss://only-secret@cache" }, Path);

        Assert.Equal((null, "only-secret", true), (options.User, options.Password, options.Ssl));
        Assert.Equal(6379, Assert.IsType<DnsEndPoint>(Assert.Single(options.EndPoints)).Port);
    }

    [Fact]
    public void Sentinels_default_to_port_26379_and_endpoints_add_nodes()
    {
        var options = RedisOptions.From(new RedisSinkConfig
        {
            Url = "redis://sentinel-a", SentinelService = "orders-primary", Endpoints = ["sentinel-b:26380", "10.0.0.7:26379"],
        }, Path);

        Assert.Equal("orders-primary", options.ServiceName);
        Assert.Equal(["Unspecified/sentinel-a:26379", "Unspecified/sentinel-b:26380", "10.0.0.7:26379"], options.EndPoints.Select(e => e.ToString()));
        Assert.Equal("Redis at sentinel-a:26379, sentinel-b:26380, 10.0.0.7:26379 (sentinel service orders-primary)", RedisOptions.Describe(options));
    }

    [Fact]
    public void A_unix_url_names_the_socket_path_and_may_select_a_database()
    {
        var options = RedisOptions.From(new RedisSinkConfig { Url = "unix://:secret-1@/run/redis/redis.sock?db=2" }, Path);

        Assert.Equal("/run/redis/redis.sock", Assert.IsType<UnixDomainSocketEndPoint>(Assert.Single(options.EndPoints)).ToString());
        Assert.Equal(("secret-1", 2), (options.Password, options.DefaultDatabase));
    }

    [Theory]
    [InlineData("http://cache:6379", null, "", "sinks.redis.cache.url: must look like redis://")]
    [InlineData("redis://cache/db1", null, "", "the database after the host must be a number, got '/db1'")]
    [InlineData("redis://cache?password=x", null, "", "unknown query parameter 'password'")]
    [InlineData("unix://run/redis.sock", null, "", "absolute path")]
    [InlineData("redis://cache", "not an endpoint:", "", "sinks.redis.cache.endpoints: 'not an endpoint:' is not host:port")]
    [InlineData("redis://cache", null, "/etc/ssl/ca.pem", "sinks.redis.cache.tls_ca_file: is set but the url is not rediss://")]
    [InlineData("rediss://cache", null, "/nonexistent/ca.pem", "tls_ca_file: '/nonexistent/ca.pem' does not exist")]
    public void Mistakes_are_refused_naming_the_key(string url, string? endpoint, string caFile, string expected)
    {
        var config = new RedisSinkConfig { Url = url, TlsCaFile = caFile, Endpoints = endpoint is null ? [] : [endpoint] };

        var error = Assert.Throws<SinkConfigurationException>(() => RedisOptions.From(config, Path));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void A_refused_url_shows_no_password()
    {
        var error = Assert.Throws<SinkConfigurationException>(() => RedisOptions.From(new RedisSinkConfig { Url = "redis2://u:hunter2@cache" }, Path));
        Assert.DoesNotContain("hunter2", error.Message);
    }
}
