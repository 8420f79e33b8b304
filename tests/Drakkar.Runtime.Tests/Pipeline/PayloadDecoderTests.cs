namespace Drakkar.Runtime.Tests.Pipeline;

/// <summary>A payload whose own constructor refuses some values.</summary>
[Payload]
public sealed partial class Checked
{
    public Checked(int amount)
    {
        if (amount < 0) throw new OverflowException($"amount {amount} is negative");
        Amount = amount;
    }

    public int Amount { get; }
}

public sealed class PayloadDecoderTests
{
    [Fact]
    public void An_exception_of_any_type_from_the_payload_is_a_decode_error_of_that_message()
    {
        var (payload, error) = PayloadDecoder.Decode<Checked>("{\"amount\":-5}"u8);

        Assert.Null(payload);
        Assert.Contains("OverflowException", error);
        Assert.Contains("amount -5 is negative", error);
        Assert.Equal(5, PayloadDecoder.Decode<Checked>("{\"amount\":5}"u8).Payload!.Amount);
    }

    [Theory]
    [InlineData("{\"amount\":5} garbage", "'g' is invalid after a single JSON value")]
    [InlineData("{\"amount\":5}{\"amount\":6}", "'{' is invalid after a single JSON value")]
    [InlineData("{\"amount\":5} 7", "'7' is invalid after a single JSON value")]
    public void Anything_after_the_value_but_whitespace_is_a_decode_error(string value, string expected)
    {
        var (payload, error) = PayloadDecoder.Decode<Checked>(System.Text.Encoding.UTF8.GetBytes(value));

        Assert.Null(payload);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Equal(5, PayloadDecoder.Decode<Checked>("{\"amount\":5} \r\n\t"u8).Payload!.Amount);
    }
}

public sealed class StdoutAsTests
{
    private static ExecutorResult Result(string stdout, bool truncated = false) =>
        new(new ExecutorTask("t-1"), 0, stdout, "", TimeSpan.Zero, 42) { StdoutTruncated = truncated };

    [Fact]
    public void Stdout_holding_one_json_value_is_read_as_the_payload_type()
    {
        Assert.Equal(7, Result("{\"amount\":7}\n").StdoutAs<Checked>().Amount);
    }

    [Theory]
    [InlineData("", false, "task t-1: stdout: empty value cannot be decoded as Checked")]
    [InlineData("{\"amount\":-1}", false, "task t-1: stdout: value is not a valid Checked: OverflowException: amount -1 is negative")]
    [InlineData("{\"amount\":", true, "task t-1: stdout: value is not a valid Checked: ")]
    public void Stdout_that_is_not_a_payload_is_a_format_error_naming_the_task_and_why(string stdout, bool truncated, string expected)
    {
        var error = Assert.Throws<FormatException>(() => Result(stdout, truncated).StdoutAs<Checked>());

        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(truncated, error.Message.EndsWith("(stdout was cut at executor.max_output_bytes)", StringComparison.Ordinal));
    }
}
