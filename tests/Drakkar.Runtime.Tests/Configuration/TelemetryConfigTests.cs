namespace Drakkar.Runtime.Tests.Configuration;

using static ConfigTestSupport;

public sealed class TelemetryConfigTests
{
    [Fact]
    public void Traces_are_off_by_default()
    {
        var config = ConfigLoader.LoadFromYaml("kafka: { brokers: k:9092 }", Env());

        Assert.Equal((false, "", ""), (config.Telemetry.Traces, config.Telemetry.OtlpEndpoint, config.Telemetry.ServiceName));
    }

    [Fact]
    public void Traces_bind_from_the_file_and_the_environment_wins()
    {
        var config = ConfigLoader.LoadFromYaml("telemetry: { traces: false, otlp_endpoint: \"http://collector:4318\", service_name: search }",
            Env(("DK_TELEMETRY__TRACES", "true")));

        Assert.Equal((true, "http://collector:4318", "search"), (config.Telemetry.Traces, config.Telemetry.OtlpEndpoint, config.Telemetry.ServiceName));
    }

    [Fact]
    public void Traces_without_an_endpoint_are_reported_at_the_endpoint_key()
    {
        var error = LoadFails("telemetry: { traces: true }");

        Assert.StartsWith("is required (where traces: true sends spans", ProblemAt(error, "telemetry.otlp_endpoint").Message);
    }

    [Fact]
    public void An_endpoint_that_is_not_an_http_url_is_reported_at_its_key()
    {
        var error = LoadFails("telemetry: { traces: true, otlp_endpoint: \"grpc://collector:4317\" }");

        Assert.StartsWith("must be a http:// or https:// URL with a host", ProblemAt(error, "telemetry.otlp_endpoint").Message);
    }
}
