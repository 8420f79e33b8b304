using System.Collections.Immutable;
using Drakkar.Generators.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Drakkar.Generators.Tests.Infrastructure;

/// <summary>What one in-memory compilation of a snippet produced.</summary>
internal sealed record GeneratorRun(
    GeneratorDriver Driver,
    Compilation Output,
    ImmutableArray<Diagnostic> GeneratorDiagnostics,
    ImmutableArray<Diagnostic> AnalyzerDiagnostics,
    ImmutableArray<Diagnostic> CompilerErrors,
    ImmutableDictionary<string, string> GeneratedSources)
{
    /// <summary>Every diagnostic the user would see as "ID (line:column) `underlined text`: message", in source order.</summary>
    public IReadOnlyList<string> Described => All.Select(Describe).ToList();

    /// <summary>Every diagnostic the user would see, generator's, analyzer's and compiler's, in source order.</summary>
    public IReadOnlyList<Diagnostic> All => GeneratorDiagnostics.Concat(AnalyzerDiagnostics).Concat(CompilerErrors)
        .OrderBy(d => d.Location.SourceSpan.Start).ThenBy(d => d.Id, StringComparer.Ordinal).ToList();

    private string Describe(Diagnostic diagnostic)
    {
        var span = diagnostic.Location.GetLineSpan();
        // Generator diagnostics carry a file path rather than a tree (their models hold no syntax).
        var tree = diagnostic.Location.SourceTree ?? Output.SyntaxTrees.FirstOrDefault(t => t.FilePath == span.Path);
        var text = tree?.GetText().ToString(diagnostic.Location.SourceSpan) ?? "";
        return $"{diagnostic.Id} ({span.StartLinePosition.Line + 1}:{span.StartLinePosition.Character + 1}) `{text}`: {diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture)}";
    }
}

/// <summary>Compiles snippets against the real runtime assembly with the generator and the analyzer attached.</summary>
internal static class GeneratorHarness
{
    public const string GlobalUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.Text.Json.Serialization;
        global using System.Threading;
        global using System.Threading.Tasks;
        global using Drakkar;
        """;

    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    /// <summary>The platform, the runtime and the packages its public API exposes.</summary>
    public static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    {
        var platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var runtime = new[]
        {
            typeof(IPayload<>).Assembly.Location,
            typeof(Npgsql.NpgsqlDataSource).Assembly.Location,
            typeof(Microsoft.Extensions.Logging.ILogger).Assembly.Location,
        };
        return platform.Concat(runtime).Distinct().Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToImmutableArray();
    });

    public static CSharpCompilation CreateCompilation(params string[] sources)
    {
        var trees = sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"Source{i}.cs"))
            .Append(CSharpSyntaxTree.ParseText(GlobalUsings, ParseOptions, path: "GlobalUsings.cs"));
        return CSharpCompilation.Create("Snippet", trees, References.Value, Options(OutputKind.DynamicallyLinkedLibrary));
    }

    /// <summary>A worker project's compiler settings: nullable on, and no noise about the framework gap.</summary>
    public static CSharpCompilationOptions Options(OutputKind kind) =>
        new CSharpCompilationOptions(kind, nullableContextOptions: NullableContextOptions.Enable)
            // The runtime targets an older framework than the test host; that version gap is not the snippet's problem.
            .WithSpecificDiagnosticOptions(new Dictionary<string, ReportDiagnostic>
            {
                ["CS1701"] = ReportDiagnostic.Suppress,
                ["CS1702"] = ReportDiagnostic.Suppress,
            });

    public static GeneratorDriver CreateDriver() =>
        CSharpGeneratorDriver.Create([new DrakkarGenerator().AsSourceGenerator()], parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static GeneratorRun Run(params string[] sources) => Run(CreateCompilation(sources));

    /// <summary>Runs the generator and the analyzer over <paramref name="compilation"/>.</summary>
    public static GeneratorRun Run(CSharpCompilation compilation)
    {
        var driver = CreateDriver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
        var analyzerDiagnostics = output.WithAnalyzers([new SinkRoutingAnalyzer()])
            .GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        var errors = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToImmutableArray();
        var generated = driver.GetRunResult().Results.SelectMany(r => r.GeneratedSources)
            .ToImmutableDictionary(s => s.HintName, s => s.SourceText.ToString());
        return new GeneratorRun(driver, output, generatorDiagnostics, analyzerDiagnostics, errors, generated);
    }
}
