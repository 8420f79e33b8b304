using Drakkar.Execution;

namespace Drakkar.Runtime.Tests.Execution;

public sealed class ChildEnvironmentTests
{
    [Theory]
    [InlineData("DK_*", "DK_BROKERS", true)]
    [InlineData("DK_*", "dk_brokers", true)]
    [InlineData("DK_*", "XDK_A", false)]
    [InlineData("*PASSWORD*", "PASSWORD", true)]
    [InlineData("*PASSWORD*", "db_password_file", true)]
    [InlineData("*_KEY", "API_KEY", true)]
    [InlineData("*_KEY", "KEYBOARD", false)]
    [InlineData("*_KEY", "API_KEYS", false)]
    [InlineData("A?C", "abc", true)]
    [InlineData("A?C", "AC", false)]
    [InlineData("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)]
    [InlineData("*", "", true)]
    [InlineData("[X]", "[x]", true)]
    public void Deny_globs_match_whole_names_case_insensitively(string glob, string name, bool expected) =>
        Assert.Equal(expected, ChildEnvironment.GlobMatches(glob, name));

    [Fact]
    public void A_task_without_env_shares_the_base_environment()
    {
        var baseEnvironment = new Dictionary<string, string> { ["A"] = "1" };

        Assert.Same(baseEnvironment, ChildEnvironment.ForTask(baseEnvironment, new Dictionary<string, string>()));
        var overlaid = ChildEnvironment.ForTask(baseEnvironment, new Dictionary<string, string> { ["A"] = "2" });
        Assert.Equal("2", overlaid["A"]);
        Assert.Equal("1", baseEnvironment["A"]);
    }
}
