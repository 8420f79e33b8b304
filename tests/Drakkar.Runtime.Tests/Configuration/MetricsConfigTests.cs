namespace Drakkar.Runtime.Tests.Configuration;

using static ConfigTestSupport;

public sealed class MetricsConfigTests
{
    [Fact]
    public void Metrics_listen_on_every_interface_at_9090_by_default()
    {
        var config = ConfigLoader.LoadFromYaml("kafka: { brokers: k:9092 }", Env());

        Assert.Equal((true, "0.0.0.0", 9090), (config.Metrics.Enabled, config.Metrics.Host, config.Metrics.Port));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::")]
    [InlineData("localhost")]
    public void Host_accepts_addresses_a_server_can_bind(string host)
    {
        var config = ConfigLoader.LoadFromYaml($"metrics: {{ host: \"{host}\" }}", Env());

        Assert.Equal(host, config.Metrics.Host);
    }

    [Fact]
    public void Host_that_is_not_an_address_is_reported_at_its_key()
    {
        var error = LoadFails("metrics: { host: metrics.example.com }");

        Assert.StartsWith("must be an IP address to listen on", ProblemAt(error, "metrics.host").Message);
    }
}
