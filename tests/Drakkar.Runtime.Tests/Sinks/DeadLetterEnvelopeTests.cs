using System.Text;
using Drakkar.Runtime.Tests.Pipeline;
using Drakkar.Sinks.Dlq;

namespace Drakkar.Runtime.Tests.Sinks;

/// <summary>What replay-dlq reads back from a DLQ record must be what the worker dead-lettered (SPEC S15, S16).</summary>
public sealed class DeadLetterEnvelopeTests
{
    private static SourceMessage Message(long offset, string? key, string value, params (string Key, string Value)[] headers) => new()
    {
        Topic = "source",
        Partition = 3,
        Offset = offset,
        Key = key is null ? null : Encoding.UTF8.GetBytes(key),
        Value = Encoding.UTF8.GetBytes(value),
        Headers = [.. headers.Select(h => new KeyValuePair<string, byte[]>(h.Key, Encoding.UTF8.GetBytes(h.Value)))],
    };

    private static string Text(byte[]? bytes) => bytes is null ? "<null>" : Encoding.UTF8.GetString(bytes);

    private static IReadOnlyList<ReplayMessage> RoundTrip(DeadLetter letter) =>
        DeadLetterEnvelope.Parse(letter.ToJsonBytes(), letter.RecordKey, letter.RecordHeaders);

    [Fact]
    public void A_source_failure_gives_back_each_message_with_its_own_key_and_headers()
    {
        var letter = new DeadLetter("source", "", "Arrange threw", [], 1, "source", 3,
            [Message(7, "a", "{\"q\":\"x\"}", ("trace", "t-a")), Message(8, null, "{\"q\":\"y\"}")], DateTimeOffset.UnixEpoch);

        var messages = RoundTrip(letter);

        Assert.Equal(["{\"q\":\"x\"}", "{\"q\":\"y\"}"], messages.Select(m => Text(m.Value)));
        Assert.Equal(["a", "<null>"], messages.Select(m => Text(m.Key)));
        Assert.Equal([("trace", "t-a")], messages[0].Headers.Select(h => (h.Key, Text(h.Value))));
        Assert.Empty(messages[1].Headers);
    }

    [Fact]
    public void Payloads_from_messages_with_different_keys_get_no_key_and_no_headers()
    {
        var payload = HttpPayload.Of(new Note("n1"));
        var letter = new DeadLetter("http", "hook", "500", [payload], 1, "source", 3,
            [Message(1, "a", "{}", ("trace", "1")), Message(2, "b", "{}", ("trace", "2"))], DateTimeOffset.UnixEpoch);

        var message = Assert.Single(RoundTrip(letter));

        Assert.Equal(("{\"text\":\"n1\"}", "<null>", 0), (Text(message.Value), Text(message.Key), message.Headers.Count));
    }

    [Fact]
    public void A_python_drakkar_record_takes_key_and_headers_from_the_kafka_record()
    {
        var value = "{\"original_payloads\":[\"{\\\"a\\\":1}\",{\"b\":2}],\"sink_name\":\"x\",\"error\":\"e\"}"u8.ToArray();
        KeyValuePair<string, byte[]>[] headers = [new("h", "v"u8.ToArray())];

        var messages = DeadLetterEnvelope.Parse(value, "k"u8.ToArray(), headers);

        Assert.Equal(["{\"a\":1}", "{\"b\":2}"], messages.Select(m => Text(m.Value)));
        Assert.All(messages, m => Assert.Equal(("k", "h"), (Text(m.Key), m.Headers.Single().Key)));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("{\"sink_name\":\"x\"}")]
    [InlineData("{\"original_payloads\":\"x\"}")]
    public void Anything_else_is_a_format_error(string value)
    {
        Assert.Throws<FormatException>(() => DeadLetterEnvelope.Parse(Encoding.UTF8.GetBytes(value), null, []));
    }
}
