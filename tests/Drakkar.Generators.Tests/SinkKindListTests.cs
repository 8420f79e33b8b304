using Drakkar.Generators.Analyzers;
using Drakkar.Generators.Parsing;

namespace Drakkar.Generators.Tests;

/// <summary>The analyzer keeps its own list of payload factories (it cannot reference the runtime); it must match the runtime's registry.</summary>
public sealed class SinkKindListTests
{
    [Fact]
    public void The_analyzers_payload_factories_are_exactly_the_runtime_registrys_payload_kinds()
    {
        var runtime = SinkKinds.PayloadKinds.Select(k => (k.PayloadType.FullName!, k.Kind.ToString())).Order().ToArray();
        var analyzer = SinkRoutingAnalyzer.Factories.Select(f => (f.Type, f.Kind)).Order().ToArray();

        Assert.Equal(runtime, analyzer);
        Assert.Equal(Enum.GetNames<SinkKind>().Order(), runtime.Select(k => k.Item2).Order());
    }

    [Fact]
    public void The_section_names_DRK0011_refuses_as_plugin_kinds_are_exactly_the_runtimes_configuration_sections()
    {
        Assert.Equal(Enum.GetValues<SinkKind>().Select(SinkKinds.ConfigName).Order(), HandlerParser.BuiltInSections.Order());
    }
}
