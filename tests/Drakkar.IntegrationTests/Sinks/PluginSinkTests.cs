using Drakkar.Configuration;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Drakkar.TestPlugin;
using Microsoft.Extensions.Logging.Abstractions;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

public sealed class PluginSinkTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-ledger-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private DrakkarConfig Config()
    {
        var config = new DrakkarConfig();
        config.Sinks.Custom[LedgerSinkPlugin.Kind] = new()
        {
            ["primary"] = new CustomSinkConfig { Settings = { ["path"] = Path.Combine(_dir, "primary.log"), ["prefix"] = "P " } },
            ["audit"] = new CustomSinkConfig { Settings = { ["path"] = Path.Combine(_dir, "audit.log") } },
        };
        return config;
    }

    [Fact]
    public async Task A_plugin_kind_from_another_assembly_gets_its_config_and_its_payloads_by_instance_name()
    {
        var dlq = new RecordingDlq();
        var manager = SinkManager.Create(Config(), [new SinkDeclaration(SinkKind.Custom, "primary", LedgerSinkPlugin.Kind)],
            new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance, new SinkRegistry().AddLedgerSink());
        await manager.StartAsync(default);
        var result = new CollectResult
        {
            Custom =
            {
                CustomPayload.Of(LedgerSinkPlugin.Kind, Reading.Sample(1), "primary"),
                CustomPayload.Of(LedgerSinkPlugin.Kind, Reading.Sample(2), "audit"),
                CustomPayload.Of(LedgerSinkPlugin.Kind, Reading.Sample(3), "primary"),
            },
        };

        await manager.DeliverAsync(result, Origin(), default);
        await manager.CloseAsync();

        Assert.Equal(["P " + PayloadData.Of(Reading.Sample(1)).ToJson(), "P " + PayloadData.Of(Reading.Sample(3)).ToJson()],
            await File.ReadAllLinesAsync(Path.Combine(_dir, "primary.log")));
        Assert.Equal([PayloadData.Of(Reading.Sample(2)).ToJson()], await File.ReadAllLinesAsync(Path.Combine(_dir, "audit.log")));
        Assert.Equal(2, manager.StatsOf("ledger", "primary").Delivered);
    }

    [Fact]
    public void Without_the_registration_the_kind_is_unknown_and_startup_lists_the_known_kinds()
    {
        var error = Assert.Throws<SinkConfigurationException>(() =>
            SinkManager.Create(Config(), [], new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance, new SinkRegistry()));
        Assert.Contains("sinks.custom.ledger: unknown plugin sink kind 'ledger'", error.Message);
        Assert.Contains("none registered", error.Message);
    }

    [Fact]
    public void The_plugin_reports_its_own_config_problems_with_the_key_path()
    {
        var config = Config();
        config.Sinks.Custom[LedgerSinkPlugin.Kind]["broken"] = new CustomSinkConfig();
        var error = Assert.Throws<SinkConfigurationException>(() =>
            SinkManager.Create(config, [], new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance, new SinkRegistry().AddLedgerSink()));
        Assert.Contains("sinks.custom.ledger.broken.path is required", error.Message);
    }

    [Fact]
    public void A_plugin_kind_cannot_take_a_built_in_name_or_register_twice()
    {
        Assert.Throws<InvalidOperationException>(() => new SinkRegistry().Register("kafka", c => new LedgerSink(c)));
        Assert.Throws<InvalidOperationException>(() => new SinkRegistry().Register("Kafka", c => new LedgerSink(c)));
        Assert.Throws<InvalidOperationException>(() => new SinkRegistry().Register("CUSTOM", c => new LedgerSink(c)));
        Assert.Throws<InvalidOperationException>(() => new SinkRegistry().AddLedgerSink().AddLedgerSink());
    }

    [Fact]
    public async Task A_plugin_instance_batches_and_lingers_as_its_config_says()
    {
        var sink = new ScriptedSink("scripted", "grouped");
        var manager = Manager(PluginConfig("grouped: { batch_size: 2, linger_ms: 2000 }"), sink, new RecordingDlq());
        await manager.StartAsync(default);

        // Four single-payload calls at once: with batch_size 2 and a linger long enough to fill, two calls of two.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => manager.DeliverAsync(Scripted("grouped", i), Origin(offsets: i), default).AsTask()));
        await manager.CloseAsync();

        Assert.Equal([2, 2], sink.Delivered.Select(batch => batch.Count));
    }

    [Fact]
    public async Task A_plugin_instance_that_never_answers_is_abandoned_after_its_attempt_timeout_and_dead_lettered_under_on_outage_dlq()
    {
        var sink = new ScriptedSink("scripted", "stuck") { Behavior = (_, _) => new ValueTask(new TaskCompletionSource().Task) };
        var dlq = new RecordingDlq();
        var manager = Manager(PluginConfig("stuck: { attempt_timeout_seconds: 0.2, on_outage: dlq }"), sink, dlq);
        await manager.StartAsync(default);

        var delivery = manager.DeliverAsync(Scripted("stuck", 7), Origin(offsets: 7), default).AsTask();
        // Under the defaults (30 s per attempt, outages held) this would still be waiting: nothing is settled.
        Assert.Same(delivery, await Task.WhenAny(delivery, Task.Delay(TimeSpan.FromSeconds(20))));
        await delivery;

        var letter = Assert.Single(dlq.Letters);
        Assert.Equal(("scripted", "stuck", 7L), (letter.SinkKind, letter.SinkName, letter.Messages.Single().Offset));
        Assert.Contains("no answer within 0.2s", letter.Error, StringComparison.Ordinal);
        Assert.Equal(0, manager.StatsOf("scripted", "stuck").Delivered);
    }

    /// <summary>A configuration with one <c>sinks.custom.scripted</c> instance, written as YAML like a user's.</summary>
    private static DrakkarConfig PluginConfig(string instance) => ConfigLoader.LoadFromYaml($$"""
        sinks:
          custom:
            scripted:
              {{instance}}
        """);

    /// <summary>The delivery engine as a worker builds it: the plugin through the registry, the delivery keys from config.</summary>
    private static SinkManager Manager(DrakkarConfig config, ScriptedSink sink, RecordingDlq dlq) =>
        SinkTestKit.Manager(new SinkRegistry().Register("scripted", _ => sink).Build(config, [], new SinkSecretMasker(), NullLoggerFactory.Instance),
            dlq, new SinkManagerOptions { Batching = SinkRegistry.Batching(config.Sinks), Delay = (_, _) => Task.CompletedTask });

    private static CollectResult Scripted(string sink, int value) => new() { Custom = { CustomPayload.Of("scripted", Reading.Sample(value), sink) } };
}
