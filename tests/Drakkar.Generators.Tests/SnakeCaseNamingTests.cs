using System.Text.Json;
using Drakkar.Generators.Parsing;

namespace Drakkar.Generators.Tests;

public sealed class SnakeCaseNamingTests
{
    [Theory]
    [InlineData("RequestId")]
    [InlineData("XMLReader")]
    [InlineData("SHA512Hash")]
    [InlineData("IOStream")]
    [InlineData("A")]
    [InlineData("a")]
    [InlineData("already_snake")]
    [InlineData("_leading")]
    [InlineData("Trailing_")]
    [InlineData("With Space")]
    [InlineData("  Spaces  Around ")]
    [InlineData("ÀccentedÉtoile")]
    [InlineData("Version2Beta")]
    [InlineData("ID")]
    [InlineData("HTTPRequestURL")]
    [InlineData("camelCase")]
    [InlineData("ABC___def")]
    [InlineData("Ünïcode")]
    [InlineData("𝄞Music")]
    [InlineData("Int32Value")]
    [InlineData("DurationSeconds")]
    public void Matches_System_Text_Json_snake_case_lower(string name) =>
        Assert.Equal(JsonNamingPolicy.SnakeCaseLower.ConvertName(name), SnakeCaseNaming.Convert(name));
}
