using Drakkar.Configuration;

namespace Drakkar.Runtime.Tests.Configuration;

/// <summary>
/// docs/configuration.md's key tables are generated from DrakkarConfigSchema. This test renders them and compares
/// them with the page; run with <c>DRAKKAR_UPDATE_DOCS=1</c> (build/config-docs.sh) to rewrite the page instead.
/// </summary>
public sealed class ConfigDocsTests
{
    private const string UpdateVariable = "DRAKKAR_UPDATE_DOCS";

    [Fact]
    public void Configuration_page_lists_every_key_as_the_schema_declares_it()
    {
        var path = Path.Combine(RepositoryPaths.Root(), "docs", "configuration.md");
        var page = File.ReadAllText(path);
        var generated = ConfigDocs.Regenerate(page);

        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
        {
            File.WriteAllText(path, generated);
            return;
        }
        if (FirstDifference(page, generated) is { } difference)
            Assert.Fail($"docs/configuration.md is not what DrakkarConfigSchema renders: {difference}\n" +
                $"Run build/config-docs.sh (this test with {UpdateVariable}=1) to rewrite its generated tables.");
    }

    /// <summary>The section and first line where the page and the rendering part, or null when they are the same.</summary>
    private static string? FirstDifference(string page, string generated)
    {
        var pageLines = page.Split('\n');
        var generatedLines = generated.Split('\n');
        var section = "(before any generated table)";
        for (var i = 0; i < Math.Max(pageLines.Length, generatedLines.Length); i++)
        {
            var pageLine = i < pageLines.Length ? pageLines[i] : "(end of file)";
            var generatedLine = i < generatedLines.Length ? generatedLines[i] : "(end of file)";
            if (ConfigDocs.TableIds(pageLine) is [var id]) section = id;
            if (pageLine != generatedLine)
                return $"section '{section}', line {i + 1}\n  page:      {pageLine}\n  generated: {generatedLine}";
        }
        return null;
    }
}
