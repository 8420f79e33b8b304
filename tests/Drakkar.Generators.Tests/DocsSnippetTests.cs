using System.Text.RegularExpressions;
using Drakkar.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Drakkar.Generators.Tests;

/// <summary>
/// Every <c>```csharp</c> block in docs/ compiles against Drakkar.Runtime (and Drakkar.Sinks.MongoDB) with the
/// generator and analyzer attached, as a worker project would (docs/README.md, "Code in these pages"): a page's
/// blocks of declarations form one project, each block of top-level statements is that project's Program.cs in
/// turn. A block right after <c>&lt;!-- snippet: expect DRK0001 --&gt;</c> must produce exactly those diagnostics; one
/// after <c>&lt;!-- snippet: fragment --&gt;</c> is not compiled and must be listed in <see cref="Fragments"/>.
/// </summary>
public sealed partial class DocsSnippetTests
{
    /// <summary>The blocks deliberately left uncompiled: page and first line. Keep this short.</summary>
    private static readonly string[] Fragments =
    [
        "sinks.md: namespace Drakkar.Sinks",   // the plugin API's signatures, a listing that would redeclare the real types
    ];

    /// <summary>
    /// The implicit usings of <c>Microsoft.NET.Sdk</c> with <c>ImplicitUsings</c> enabled, and <c>Drakkar</c>, which
    /// reference pages leave out (a block's own <c>using Drakkar;</c> is then redundant, not wrong).
    /// </summary>
    private const string Usings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Threading;
        global using System.Threading.Tasks;
        global using Drakkar;
        """;

    private static readonly string Docs = Path.Combine(RepositoryPaths.Root, "docs");

    public static TheoryData<string> Pages()
    {
        var pages = new TheoryData<string>();
        foreach (var path in Directory.EnumerateFiles(Docs, "*.md", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            if (Blocks(File.ReadAllText(path)).Count > 0) pages.Add(Path.GetRelativePath(Docs, path));
        return pages;
    }

    [Theory]
    [MemberData(nameof(Pages))]
    public void Every_csharp_block_of_the_page_compiles_with_the_generator(string page)
    {
        var problems = Check(File.ReadAllText(Path.Combine(Docs, page)));
        Assert.True(problems.Count == 0, $"docs/{page}:\n  " + string.Join("\n  ", problems));
    }

    [Fact]
    public void Fragments_are_exactly_the_blocks_marked_as_fragments()
    {
        var marked = Directory.EnumerateFiles(Docs, "*.md", SearchOption.AllDirectories)
            .SelectMany(path => Blocks(File.ReadAllText(path)).Where(b => b.Marker == "fragment")
                .Select(b => $"{Path.GetRelativePath(Docs, path)}: {b.Code.Split('\n')[0]}"))
            .Order(StringComparer.Ordinal);
        Assert.Equal(Fragments.Order(StringComparer.Ordinal), marked);
    }

    [Fact]
    public void A_block_with_a_wrong_name_or_an_unexpected_diagnostic_is_reported_with_its_line()
    {
        const string page = """
            # A page

            ```csharp
            [Payload] public sealed partial record Ping(string Id);
            ```

            ```csharp
            return await DrakkarApp.RunAsync<PingHandler>(args);
            ```

            <!-- snippet: expect DRK0004 -->
            ```csharp
            [Payload] public sealed record Pong(string Id);
            ```
            """;
        Assert.Equal(["block at line 7: CS0246 (1:34) The type or namespace name 'PingHandler' could not be found (are you missing a using directive or an assembly reference?)"],
            Check(page));
        Assert.Contains("block at line 12: expected DRK0005, got DRK0004", Check(page.Replace("expect DRK0004", "expect DRK0005", StringComparison.Ordinal)));
    }

    /// <summary>What is wrong with a page's blocks, one line each; empty when every block compiles as it should.</summary>
    private static List<string> Check(string markdown)
    {
        var blocks = Blocks(markdown);
        var declarations = blocks.Where(b => b.Marker is null && !b.IsProgram).ToList();
        var problems = new List<string>();
        foreach (var program in blocks.Where(b => b.Marker is null && b.IsProgram).DefaultIfEmpty())
        {
            var project = program is null ? declarations : [.. declarations, program];
            problems.AddRange(Diagnose(project, program is null ? OutputKind.DynamicallyLinkedLibrary : OutputKind.ConsoleApplication)
                .Where(d => !problems.Contains(d)));
        }
        foreach (var block in blocks.Where(b => b.Marker?.StartsWith("expect ", StringComparison.Ordinal) == true))
        {
            var expected = block.Marker!["expect ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal);
            var got = Run([.. declarations, block], OutputKind.DynamicallyLinkedLibrary).Select(d => d.Id).Distinct().Order(StringComparer.Ordinal);
            if (!expected.SequenceEqual(got))
                problems.Add($"block at line {block.Line}: expected {string.Join(" ", expected)}, got {string.Join(" ", got)}");
        }
        return problems;
    }

    private static IEnumerable<string> Diagnose(List<Block> project, OutputKind kind) =>
        Run(project, kind).Select(d =>
        {
            var span = d.Location.GetLineSpan();
            var where = int.TryParse(span.Path, System.Globalization.CultureInfo.InvariantCulture, out var index) ? $"block at line {project[index].Line}" : $"generated {span.Path}";
            var position = span.StartLinePosition;
            return $"{where}: {d.Id} ({position.Line + 1}:{position.Character + 1}) {d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)}";
        });

    /// <summary>The errors and warnings of the blocks compiled as one project, the generator's and the analyzer's included.</summary>
    private static List<Diagnostic> Run(List<Block> project, OutputKind kind)
    {
        // Each tree's path is its block's index in the project, so a diagnostic names its block.
        var trees = project.Select((b, i) => CSharpSyntaxTree.ParseText(b.Code, GeneratorHarness.ParseOptions, path: i.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            .Append(CSharpSyntaxTree.ParseText(Usings, GeneratorHarness.ParseOptions, path: "usings"));
        var references = GeneratorHarness.References.Value.Add(MetadataReference.CreateFromFile(typeof(Drakkar.Sinks.MongoSinkRegistration).Assembly.Location))
            .Add(MetadataReference.CreateFromFile(typeof(MongoDB.Driver.IMongoClient).Assembly.Location));
        var run = GeneratorHarness.Run(CSharpCompilation.Create("DocsSnippet", trees, references, GeneratorHarness.Options(kind)));
        return
        [
            .. run.GeneratorDiagnostics.Concat(run.AnalyzerDiagnostics).Concat(run.Output.GetDiagnostics())
                .Where(d => d.Severity >= DiagnosticSeverity.Warning && !d.IsSuppressed)
                // CS8019/CS0105-like hints about the added usings are not the page's problem.
                .Where(d => d.Location.GetLineSpan().Path != "usings")
                .Distinct()
                .OrderBy(d => d.Location.GetLineSpan().Path, StringComparer.Ordinal).ThenBy(d => d.Location.SourceSpan.Start),
        ];
    }

    /// <summary>A <c>```csharp</c> block: its 1-based line in the page, its code, and the snippet marker right above it.</summary>
    private sealed record Block(int Line, string Code, string? Marker)
    {
        public bool IsProgram => CSharpSyntaxTree.ParseText(Code, GeneratorHarness.ParseOptions).GetCompilationUnitRoot().Members.OfType<GlobalStatementSyntax>().Any();
    }

    private static List<Block> Blocks(string markdown)
    {
        var lines = markdown.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var blocks = new List<Block>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].TrimEnd() != "```csharp") continue;
            var start = i;
            var end = Array.FindIndex(lines, start + 1, l => l.TrimEnd() == "```");
            if (end < 0) throw new InvalidOperationException($"the block at line {start + 1} is never closed");
            var above = start - 1;
            while (above >= 0 && lines[above].Trim().Length == 0) above--;
            var marker = above >= 0 && MarkerPattern().Match(lines[above]) is { Success: true } m ? m.Groups[1].Value.Trim() : null;
            blocks.Add(new Block(start + 1, string.Join('\n', lines[(start + 1)..end]), marker));
            i = end;
        }
        return blocks;
    }

    [GeneratedRegex(@"^\s*<!--\s*snippet:\s*(.+?)\s*-->\s*$")]
    private static partial Regex MarkerPattern();
}
