using Drakkar.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Drakkar.Generators.Tests;

/// <summary>An edit that does not touch payloads or handlers leaves every pipeline step and output cached.</summary>
public sealed class IncrementalityTests
{
    private const string Unrelated = """
        namespace Search.Worker;

        public static class Helpers
        {
            public static int Twice(int x) => x * 2;
        }
        """;

    [Fact]
    public void Unrelated_edit_leaves_models_and_outputs_cached()
    {
        var compilation = GeneratorHarness.CreateCompilation(BaselineTests.Source, Unrelated);
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        var helpers = compilation.SyntaxTrees.Single(t => t.FilePath == "Source1.cs");
        var edited = compilation.ReplaceSyntaxTree(helpers,
            CSharpSyntaxTree.ParseText(Unrelated.Replace("x * 2", "x + x") + "\npublic sealed class Added { }", GeneratorHarness.ParseOptions, "Source1.cs"));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        foreach (var step in new[] { TrackingNames.PayloadModels, TrackingNames.SinkHandlers, TrackingNames.PeriodicHandlers, TrackingNames.HandlerModels })
        {
            var outputs = result.TrackedSteps[step].SelectMany(s => s.Outputs).ToList();
            Assert.NotEmpty(outputs);
            Assert.All(outputs, o => Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                $"{step}: {o.Reason}"));
        }
        var sourceOutputs = result.TrackedOutputSteps.SelectMany(p => p.Value).SelectMany(s => s.Outputs).ToList();
        Assert.Equal(3, result.GeneratedSources.Length);
        Assert.NotEmpty(sourceOutputs);
        Assert.All(sourceOutputs, o => Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, o.Reason.ToString()));
    }

    [Fact]
    public void Editing_a_payload_regenerates_only_that_payload()
    {
        var compilation = GeneratorHarness.CreateCompilation(BaselineTests.Source, Unrelated);
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        var tree = compilation.SyntaxTrees.Single(t => t.FilePath == "Source0.cs");
        var edited = compilation.ReplaceSyntaxTree(tree, CSharpSyntaxTree.ParseText(
            BaselineTests.Source.Replace("Location(string Path, int Line)", "Location(string Path, long Line)"), GeneratorHarness.ParseOptions, "Source0.cs"));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        var reasons = result.TrackedSteps[TrackingNames.PayloadModels].SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();
        Assert.Contains(IncrementalStepRunReason.Modified, reasons);
        Assert.Contains(reasons, r => r is IncrementalStepRunReason.Unchanged or IncrementalStepRunReason.Cached);
    }
}
