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
}
