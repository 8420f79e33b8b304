using Drakkar.Cli;

namespace Drakkar.Runtime.Tests.Cli;

public sealed class CommandLineTests
{
    private static readonly Dictionary<string, (string[], string[])> Commands = new()
    {
        ["probe"] = (["--config", "--partition", "--offset", "--count"], []),
        ["replay-dlq"] = (["--config", "--target-topic"], ["--dry-run"]),
    };

    [Fact]
    public void A_misspelt_option_names_the_one_it_probably_meant_and_its_value_is_not_a_second_error()
    {
        var line = CommandLine.Parse(["probe", "--partiton", "0", "--offset", "3"], Commands);

        Assert.Equal(["unknown option '--partiton' for 'probe'; did you mean '--partition'?"], line.Errors);
        Assert.Equal("3", line.Value("--offset"));
    }

    [Fact]
    public void A_misspelt_flag_is_suggested_and_an_unrelated_option_gets_no_suggestion()
    {
        var line = CommandLine.Parse(["replay-dlq", "--dryrun", "--target-topic", "t", "--bogus"], Commands);

        Assert.Equal(["unknown option '--dryrun' for 'replay-dlq'; did you mean '--dry-run'?", "unknown option '--bogus' for 'replay-dlq'"], line.Errors);
        Assert.Equal("t", line.Value("--target-topic"));
    }

    [Fact]
    public void An_offset_past_two_billion_is_read_and_a_count_below_its_minimum_is_refused()
    {
        var line = CommandLine.Parse(["probe", "--offset", "3000000000", "--count", "0", "--partition", "99999999999"], Commands);

        Assert.Equal(3_000_000_000L, line.Long("--offset"));
        Assert.Equal(1, line.Integer("--count", 1, minimum: 1));
        Assert.Null(line.Integer("--partition"));
        Assert.Equal(["--count must be a whole number ≥ 1 (got '0')", "--partition must be a whole number ≥ 0 and ≤ 2147483647 (got '99999999999')"], line.Errors);
    }

    [Fact]
    public void A_stray_word_is_an_unexpected_argument()
    {
        var line = CommandLine.Parse(["probe", "--offset", "3", "extra"], Commands);

        Assert.Equal(["unexpected argument 'extra' for 'probe'"], line.Errors);
    }
}
