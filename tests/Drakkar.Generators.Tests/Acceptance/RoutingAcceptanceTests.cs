using Drakkar.Generators.Tests.Infrastructure;

namespace Drakkar.Generators.Tests.Acceptance;

/// <summary>
/// API.md's acceptance: the example worker builds clean; an unnamed kafka payload with two kafka sinks fails with
/// DRK0001 on that line; an undeclared name fails with DRK0002; nothing else is reported in either case.
/// </summary>
public sealed class RoutingAcceptanceTests
{
    private static readonly int MistakeLine =
        ApiExample.Source.Split('\n').ToList().FindIndex(line => line.Contains(ApiExample.MistakeMarker, StringComparison.Ordinal)) + 1;

    [Fact]
    public void The_API_example_builds_clean()
    {
        var run = GeneratorHarness.Run(ApiExample.Source);

        Assert.Empty(run.Described);
        Assert.Equal(4, run.GeneratedSources.Count);
    }

    [Fact]
    public void An_unnamed_kafka_payload_with_two_kafka_sinks_fails_with_DRK0001_on_its_line()
    {
        var run = GeneratorHarness.Run(ApiExample.Source.Replace(ApiExample.MistakeMarker, "collect.Kafka.Add(KafkaPayload.Of(summary));"));

        Assert.Equal(
            [$"DRK0001 ({MistakeLine}:27) `KafkaPayload.Of(summary)`: Handler 'SearchHandler' declares 2 kafka sinks ('results', 'alerts'); name the one this payload goes to, for example sink: \"results\""],
            run.Described);
    }

    [Fact]
    public void An_undeclared_sink_name_fails_with_DRK0002()
    {
        var run = GeneratorHarness.Run(ApiExample.Source.Replace(ApiExample.MistakeMarker, "collect.Kafka.Add(KafkaPayload.Of(summary, sink: \"alert\"));"));

        Assert.Equal(
            [$"DRK0002 ({MistakeLine}:58) `\"alert\"`: Handler 'SearchHandler' declares no kafka sink named 'alert' (declared: 'results', 'alerts'); use a declared name or add [Sink(SinkKind.Kafka, \"alert\")] to the handler"],
            run.Described);
    }

    [Fact]
    public void A_computed_sink_name_is_left_to_the_runtime()
    {
        var run = GeneratorHarness.Run(ApiExample.Source.Replace(ApiExample.MistakeMarker, "collect.Kafka.Add(KafkaPayload.Of(summary, sink: id));"));

        Assert.Empty(run.Described);
    }
}
