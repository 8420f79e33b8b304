using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace Drakkar.Sinks.Dlq;

/// <summary>
/// One dead-letter record: what failed, why, and everything needed to replay it losslessly (SPEC S15).
/// <see cref="Payloads"/> is empty for a source failure (for example <c>Arrange</c> threw); the source messages'
/// values are then the originals.
/// </summary>
public sealed record DeadLetter(
    string SinkKind,
    string SinkName,
    string Error,
    IReadOnlyList<SinkPayload> Payloads,
    int AttemptCount,
    string SourceTopic,
    int Partition,
    IReadOnlyList<SourceMessage> Messages,
    DateTimeOffset Timestamp)
{
    /// <summary>True when the source messages themselves failed, so their values are the originals.</summary>
    public bool IsSourceFailure => Payloads.Count == 0;

    /// <summary>The record size <see cref="ToJsonBytes(int)"/> keeps to unless told otherwise (librdkafka's default message.max.bytes).</summary>
    public const int DefaultMaxBytes = 1_000_000;

    /// <summary>
    /// The record value: compact JSON with Drakkar's fields (<c>original_payloads</c>, <c>sink_name</c>,
    /// <c>sink_type</c>, <c>error</c>, <c>timestamp</c>, <c>partition</c>, <c>attempt_count</c>) plus
    /// <c>source_topic</c>, <c>offsets</c> and <c>source_messages</c> (key and headers base64) so a replay loses
    /// nothing; <c>"source_failure": true</c> marks a record of failed source messages. Each value is stored once: a
    /// source message's value is in <c>original_payloads</c> as text, or, when it is not valid UTF-8, in
    /// <c>source_messages[].value</c> as base64. When the record would exceed
    /// <paramref name="maxBytes"/>, the largest values are cut with a marker naming where the original is, and the
    /// record says <c>"truncated": true</c>. Never throws: a payload whose data has no JSON form is recorded as its
    /// text with the reason.
    /// </summary>
    public byte[] ToJsonBytes(int maxBytes = DefaultMaxBytes)
    {
        var values = OriginalValues();
        var record = Write(values, truncated: false);
        if (record.Length <= maxBytes) return record;

        // Cut the values, largest first, until the rest of the record fits: each gets an equal share of what is left.
        var overhead = Write([.. values.Select(v => v with { Text = "", Raw = null })], truncated: true).Length;
        var share = Math.Max(0, (maxBytes - overhead) / Math.Max(1, values.Count) - 200);
        var cut = values.Select((v, i) => v.Size <= share ? v : Truncate(v, share, i)).ToList();
        return Write(cut, truncated: true);
    }

    /// <summary>How the text of a payload with no JSON form begins (the record also lists it under <c>unwritable_payloads</c>).</summary>
    internal const string UnwritableMarker = "[unserializable ";

    /// <summary>True when <see cref="ToJsonBytes"/> had to cut values for this record to fit.</summary>
    public static bool IsTruncated(ReadOnlySpan<byte> record) => record.IndexOf("\"truncated\":true"u8) >= 0;

    private readonly record struct StoredValue(string Text, byte[]? Raw, bool Unwritable = false)
    {
        public int Size => Text.Length + (Raw?.Length ?? 0) * 4 / 3;
    }

    private List<StoredValue> OriginalValues()
    {
        var values = new List<StoredValue>(IsSourceFailure ? Messages.Count : Payloads.Count);
        if (IsSourceFailure)
        {
            foreach (var message in Messages)
            {
                // Not valid UTF-8: the exact bytes travel once, as base64, and the text only says so.
                values.Add(Utf8.IsValid(message.Value)
                    ? new StoredValue(Encoding.UTF8.GetString(message.Value), null)
                    : new StoredValue($"[binary value of {message.Value.Length} bytes: base64 in source_messages]", message.Value));
            }
            return values;
        }
        foreach (var payload in Payloads)
        {
            try
            {
                values.Add(new StoredValue(Encoding.UTF8.GetString(payload.Data.ToJsonBytes()), null));
            }
            catch (Exception e) when (PayloadData.IsUnwritable(e))
            {
                values.Add(new StoredValue($"{UnwritableMarker}{payload.Data.TypeName}: {e.Message}] {TextOf(payload.Data.Value)}", null, Unwritable: true));
            }
        }
        return values;
    }

    /// <summary>
    /// The payload's own <c>ToString()</c>, which may fail too: a record that refers to itself prints itself until the
    /// runtime stops it (InsufficientExecutionStackException). A dead letter must still be written.
    /// </summary>
    private static string TextOf(object value)
    {
        try
        {
            return value.ToString() ?? "";
        }
        catch (Exception e)
        {
            return $"(its ToString() failed: {e.GetType().Name})";
        }
    }

    private StoredValue Truncate(StoredValue value, int share, int index)
    {
        var where = IsSourceFailure && index < Messages.Count
            ? $"{SourceTopic}[{Partition}]@{Messages[index].Offset}"
            : $"{SourceTopic}[{Partition}] offsets {string.Join(",", Messages.Select(m => m.Offset))}";
        var keep = Math.Min(value.Text.Length, share);
        if (keep > 0 && char.IsHighSurrogate(value.Text[keep - 1])) keep--;
        return new StoredValue($"{value.Text[..keep]}…[truncated by the DLQ: {value.Size} bytes; the original is at {where}]", null, value.Unwritable);
    }

    private byte[] Write(List<StoredValue> values, bool truncated)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer, Serialization.JsonOutput.Compact))
        {
            json.WriteStartObject();
            json.WriteStartArray("original_payloads");
            foreach (var value in values) json.WriteStringValue(value.Text);
            json.WriteEndArray();
            json.WriteString("sink_name", SinkName);
            json.WriteString("sink_type", SinkKind);
            json.WriteString("error", Error);
            json.WriteNumber("timestamp", Timestamp.ToUnixTimeMilliseconds() / 1000.0);
            json.WriteString("source_topic", SourceTopic);
            json.WriteNumber("partition", Partition);
            json.WriteStartArray("offsets");
            foreach (var message in Messages) json.WriteNumberValue(message.Offset);
            json.WriteEndArray();
            json.WriteNumber("attempt_count", AttemptCount);
            if (IsSourceFailure) json.WriteBoolean("source_failure", true);
            if (truncated) json.WriteBoolean("truncated", true);
            if (!IsSourceFailure) WriteTargets(json);
            if (values.Any(v => v.Unwritable))
            {
                // Not data a replay can republish: the payload's text and the reason, not its JSON.
                json.WriteStartArray("unwritable_payloads");
                for (var i = 0; i < values.Count; i++)
                    if (values[i].Unwritable) json.WriteNumberValue(i);
                json.WriteEndArray();
            }
            json.WriteStartArray("source_messages");
            for (var i = 0; i < Messages.Count; i++)
            {
                var message = Messages[i];
                json.WriteStartObject();
                json.WriteNumber("offset", message.Offset);
                if (message.Key is null) json.WriteNull("key");
                else json.WriteBase64String("key", message.Key);
                json.WriteStartArray("headers");
                foreach (var header in message.Headers)
                {
                    json.WriteStartObject();
                    json.WriteString("key", header.Key);
                    if (header.Value is null) json.WriteNull("value");
                    else json.WriteBase64String("value", header.Value);
                    json.WriteEndObject();
                }
                json.WriteEndArray();
                if (IsSourceFailure && i < values.Count && values[i].Raw is { } raw) json.WriteBase64String("value", raw);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// <c>payload_targets</c>, one object per entry of <c>original_payloads</c>: where the payload was going, which its
    /// data alone does not say, so that it can be traced and delivered again by hand.
    /// </summary>
    private void WriteTargets(Utf8JsonWriter json)
    {
        json.WriteStartArray("payload_targets");
        foreach (var payload in Payloads)
        {
            json.WriteStartObject();
            PayloadTarget.WriteMembers(json, payload);
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    /// <summary>
    /// The Kafka record key: the source message's key when the record comes from one message, or from several that
    /// share a key; otherwise none (each message's key is still in <c>source_messages</c>).
    /// </summary>
    public byte[]? RecordKey
    {
        get
        {
            if (Messages.Count == 0) return null;
            var first = Messages[0].Key;
            for (var i = 1; i < Messages.Count; i++)
            {
                var key = Messages[i].Key;
                if (first is null ? key is not null : key is null || !first.AsSpan().SequenceEqual(key)) return null;
            }
            return first;
        }
    }

    /// <summary>The headers copied onto the Kafka record: the source message's own, when there is exactly one.</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>> RecordHeaders => Messages.Count == 1 ? Messages[0].Headers : [];
}
