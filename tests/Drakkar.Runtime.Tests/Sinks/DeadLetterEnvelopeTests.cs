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

    /// <summary>The data alone did not say where a payload was going: a Redis payload could not be set again by hand.</summary>
    [Fact]
    public void Each_payload_keeps_where_it_was_going_beside_its_data()
    {
        var note = new Note("n1");
        SinkPayload[] payloads =
        [
            RedisPayload.Of("note:n1", note, ttl: TimeSpan.FromMinutes(2)), RedisPayload.Of("", note), FilePayload.Of("out/notes.jsonl", note),
            PostgresPayload.Of("notes", note), MongoPayload.Of("archive", note), KafkaPayload.Of(note, key: [0xff, 0x01]),
            KafkaPayload.Of(note, key: "k1"u8.ToArray()), HttpPayload.Of(note),
        ];
        var letter = new DeadLetter("redis", "cache", "refused", payloads, 1, "source", 3, [Message(1, "a", "{}")], DateTimeOffset.UnixEpoch);

        using var record = System.Text.Json.JsonDocument.Parse(letter.ToJsonBytes());

        Assert.Equal(
            ["{\"key\":\"note:n1\",\"ttl_seconds\":120}", "{\"key\":\"\",\"ttl_seconds\":null}", "{\"path\":\"out/notes.jsonl\"}",
             "{\"table\":\"notes\"}", "{\"collection\":\"archive\"}", "{\"key_base64\":\"/wE=\"}", "{\"key\":\"k1\"}", "{}"],
            record.RootElement.GetProperty("payload_targets").EnumerateArray().Select(t => t.GetRawText()));
        Assert.Equal(payloads.Length, record.RootElement.GetProperty("original_payloads").GetArrayLength());
        // Replay still republishes the data.
        Assert.All(RoundTrip(letter), m => Assert.Equal("{\"text\":\"n1\"}", Text(m.Value)));
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

    private static SourceMessage Binary(long offset, byte[] value) => new() { Topic = "source", Partition = 3, Offset = offset, Value = value };

    [Fact]
    public void A_binary_source_value_is_stored_once_and_replays_byte_for_byte()
    {
        var value = new byte[200_000];
        new Random(7).NextBytes(value);
        var letter = new DeadLetter("", "", "Arrange threw", [], 1, "source", 3, [Binary(9, value)], DateTimeOffset.UnixEpoch);

        var record = letter.ToJsonBytes();

        // One base64 copy (×4/3) plus the lossy text for people: far below the ×5.2 of a value stored twice, escaped.
        Assert.True(record.Length < 3 * value.Length, $"record is {record.Length} bytes for a {value.Length}-byte value");
        Assert.Equal(value, Assert.Single(DeadLetterEnvelope.Parse(record, null, [])).Value);
    }

    [Fact]
    public void Non_ascii_text_is_not_escaped()
    {
        var text = "{\"q\":\"" + new string('ж', 120_000) + "\"}";
        var letter = new DeadLetter("", "", "Arrange threw", [], 1, "source", 3, [Message(1, null, text)], DateTimeOffset.UnixEpoch);

        var record = letter.ToJsonBytes();

        Assert.True(record.Length < Encoding.UTF8.GetByteCount(text) + 2_000, $"record is {record.Length} bytes");
        Assert.Equal(text, Text(Assert.Single(DeadLetterEnvelope.Parse(record, null, [])).Value));
    }

    [Fact]
    public void A_record_over_the_limit_is_cut_with_a_marker_naming_the_source_and_replay_refuses_it()
    {
        var letter = new DeadLetter("", "", "Arrange threw", [], 1, "source", 3,
            [Message(41, "k", new string('x', 300_000)), Message(42, "k", "small")], DateTimeOffset.UnixEpoch);

        var record = letter.ToJsonBytes(maxBytes: 64 * 1024);

        Assert.True(record.Length <= 64 * 1024, $"record is {record.Length} bytes");
        var json = System.Text.Json.JsonDocument.Parse(record).RootElement;
        Assert.True(json.GetProperty("truncated").GetBoolean());
        Assert.Contains("the original is at source[3]@41", json.GetProperty("original_payloads")[0].GetString());
        Assert.Equal("small", json.GetProperty("original_payloads")[1].GetString());
        Assert.True(DeadLetter.IsTruncated(record));
        var refused = Assert.Throws<FormatException>(() => DeadLetterEnvelope.Parse(record, null, []));
        Assert.Contains("size limit", refused.Message);
    }

    [Fact]
    public void A_payload_whose_data_has_no_json_form_is_recorded_as_text_with_the_reason()
    {
        var letter = new DeadLetter("kafka", "out", "NaN", [KafkaPayload.Of(new Measure(double.NaN))], 1, "source", 3,
            [Message(5, null, "{}")], DateTimeOffset.UnixEpoch);

        var json = System.Text.Json.JsonDocument.Parse(letter.ToJsonBytes()).RootElement;

        var stored = json.GetProperty("original_payloads")[0].GetString();
        Assert.StartsWith("[unserializable Measure: Measure.Value is NaN, which JSON cannot carry (it has no NaN or infinite numbers)]", stored);
        Assert.Equal("[0]", json.GetProperty("unwritable_payloads").GetRawText());
        // That text is not the payload: a replay refuses the record rather than publish it as if it were.
        var refused = Assert.Throws<FormatException>(() => DeadLetterEnvelope.Parse(letter.ToJsonBytes(), null, []));
        Assert.Contains("had no JSON form", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_record_written_before_unwritable_payloads_existed_is_refused_by_its_text()
    {
        var record = """{"original_payloads":["[unserializable Measure: NaN] Measure { Value = NaN }"],"sink_name":"out","sink_type":"kafka","error":"x","timestamp":1.5,"partition":0}"""u8.ToArray();

        var refused = Assert.Throws<FormatException>(() => DeadLetterEnvelope.Parse(record, null, []));
        Assert.Contains("--source-messages", refused.Message, StringComparison.Ordinal);
    }
}

/// <summary>A payload with a number JSON cannot carry when it is NaN or infinite.</summary>
[Payload]
public sealed partial record Measure(double Value);
