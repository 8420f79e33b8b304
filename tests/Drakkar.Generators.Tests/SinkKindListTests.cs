using Drakkar.Generators.Analyzers;

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
}
