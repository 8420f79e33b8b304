using System.Buffers;
using System.Text;
using System.Text.Json;

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

    /// <summary>
    /// The record value: compact JSON with Drakkar's fields (<c>original_payloads</c>, <c>sink_name</c>,
    /// <c>sink_type</c>, <c>error</c>, <c>timestamp</c>, <c>partition</c>, <c>attempt_count</c>) plus
    /// <c>source_topic</c>, <c>offsets</c> and <c>source_messages</c> (key and headers base64, and for source
    /// failures the value) so a replay loses nothing.
    /// </summary>
    public byte[] ToJsonBytes()
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("original_payloads");
            if (IsSourceFailure)
            {
                foreach (var message in Messages) json.WriteStringValue(Encoding.UTF8.GetString(message.Value));
            }
            else
            {
                foreach (var payload in Payloads) json.WriteStringValue(payload.Data.ToJsonBytes());
            }
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
            json.WriteStartArray("source_messages");
            foreach (var message in Messages)
            {
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
                if (IsSourceFailure) json.WriteBase64String("value", message.Value);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
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
