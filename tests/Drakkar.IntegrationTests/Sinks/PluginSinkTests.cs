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
        Assert.Throws<InvalidOperationException>(() => new SinkRegistry().AddLedgerSink().AddLedgerSink());
    }
}
