using System.Text;
using System.Text.Json;

namespace Drakkar.Sinks.Dlq;

/// <summary>One message to republish from a dead letter: an original payload with the source key and headers it carried.</summary>
public sealed record ReplayMessage(byte[]? Key, byte[] Value, IReadOnlyList<KeyValuePair<string, byte[]>> Headers);

/// <summary>
/// Reads a DLQ record back (the inverse of <see cref="DeadLetter.ToJsonBytes"/>) into the messages a replay
/// republishes. Records written by Python Drakkar have no <c>source_messages</c>; their key and headers then come
/// from the DLQ record itself, which the worker copied from the source message.
/// </summary>
internal static class DeadLetterEnvelope
{
    /// <summary>
    /// The original payloads, each with its source key and headers: for a source failure payload <c>i</c> is
    /// message <c>i</c>'s value, so it gets that message's key and headers; for a sink failure the payloads cannot
    /// be traced to single messages, so they get the key all source messages share (if they do) and the headers of
    /// the source message when there was exactly one — the same rule the DLQ uses for its own record key.
    /// </summary>
    /// <exception cref="FormatException">The value is not a Drakkar DLQ record, or its payloads cannot be replayed (no JSON form, cut to the size limit).</exception>
    public static IReadOnlyList<ReplayMessage> Parse(ReadOnlySpan<byte> value, byte[]? recordKey, IReadOnlyList<KeyValuePair<string, byte[]>> recordHeaders)
    {
        List<string>? payloads = null;
        List<SourceFields>? sources = null;
        var sourceFailure = false;
        var truncated = false;
        var unwritable = false;
        ReadRecord(value, (string? name, ref Utf8JsonReader reader) =>
        {
            switch (name)
            {
                case "original_payloads":
                    payloads = ReadPayloads(ref reader);
                    return true;
                case "source_messages":
                    sources = ReadSources(ref reader);
                    return true;
                case "source_failure":
                    sourceFailure = reader.TokenType == JsonTokenType.True;
                    return true;
                case "truncated":
                    truncated = reader.TokenType == JsonTokenType.True;
                    return true;
                case "unwritable_payloads":
                    if (reader.TokenType != JsonTokenType.StartArray) throw new FormatException("unwritable_payloads is not an array");
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) unwritable = true;
                    return true;
                default:
                    return false;
            }
        });
        if (payloads is null) throw new FormatException("the record has no original_payloads");
        // Records written before unwritable_payloads existed are told by the text alone (JSON never starts that way).
        if (unwritable || (!sourceFailure && payloads.Any(p => p.StartsWith(DeadLetter.UnwritableMarker, StringComparison.Ordinal))))
            throw new FormatException("a payload of the record had no JSON form when it was dead-lettered (the record keeps its text and the reason, " +
                "not data); replay its source messages (--source-messages) instead");
        if (truncated)
            throw new FormatException("the record was cut to fit the DLQ's size limit when it was written; replay its source messages (named in the record) instead");

        if (sources is null)
            return [.. payloads.Select(p => new ReplayMessage(recordKey, Encoding.UTF8.GetBytes(p), recordHeaders))];
        // A source failure (the messages themselves failed, e.g. Arrange threw): payload i is message i's value, exact
        // bytes in base64 when they are not UTF-8 text. Older records carried the base64 value for every message.
        if ((sourceFailure || sources.All(s => s.HasValue)) && sources.Count == payloads.Count)
            return [.. payloads.Select((p, i) => new ReplayMessage(sources[i].Key, sources[i].Value ?? Encoding.UTF8.GetBytes(p), sources[i].Headers))];
        var sharedKey = sources.Count > 0 && sources.All(s => SameKey(s.Key, sources[0].Key)) ? sources[0].Key : null;
        IReadOnlyList<KeyValuePair<string, byte[]>> headers = sources.Count == 1 ? sources[0].Headers : [];
        return [.. payloads.Select(p => new ReplayMessage(sharedKey, Encoding.UTF8.GetBytes(p), headers))];
    }

    /// <summary>
    /// Where a record's source messages are: <c>source_topic</c>, <c>partition</c> and <c>offsets</c> (what
    /// <c>replay-dlq --source-messages</c> reads again). Also read from truncated records, which keep these whole.
    /// </summary>
    /// <exception cref="FormatException">The value is not a Drakkar DLQ record, or it names no source messages.</exception>
    public static (string Topic, int Partition, IReadOnlyList<long> Offsets) SourceOf(ReadOnlySpan<byte> value)
    {
        string? topic = null;
        int? partition = null;
        List<long>? offsets = null;
        ReadRecord(value, (string? name, ref Utf8JsonReader reader) =>
        {
            switch (name)
            {
                case "source_topic":
                    topic = reader.GetString();
                    return true;
                case "partition":
                    partition = reader.GetInt32();
                    return true;
                case "offsets":
                    if (reader.TokenType != JsonTokenType.StartArray) throw new FormatException("offsets is not an array");
                    offsets = [];
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) offsets.Add(reader.GetInt64());
                    return true;
                default:
                    return false;
            }
        });
        if (string.IsNullOrEmpty(topic) || partition is null || offsets is not { Count: > 0 })
            throw new FormatException("the record names no source messages (source_topic, partition and offsets)");
        return (topic, partition.Value, offsets);
    }

    /// <summary>Reads one top-level field of a record (the reader is on its value); false to have it skipped.</summary>
    private delegate bool FieldReader(string? name, ref Utf8JsonReader reader);

    /// <summary>Walks a record's top-level fields; malformed JSON or a field of the wrong type is a <see cref="FormatException"/>.</summary>
    private static void ReadRecord(ReadOnlySpan<byte> value, FieldReader read)
    {
        try
        {
            var reader = new Utf8JsonReader(value);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new FormatException("the value is not a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                if (!read(name, ref reader)) reader.Skip();
            }
        }
        catch (JsonException e)
        {
            throw new FormatException($"the value is not valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            throw new FormatException($"a field has the wrong type: {e.Message}", e);
        }
    }

    private static bool SameKey(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    private static List<string> ReadPayloads(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray) throw new FormatException("original_payloads is not an array");
        var payloads = new List<string>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType == JsonTokenType.String)
            {
                payloads.Add(reader.GetString()!);
            }
            else
            {
                // Python Drakkar falls back to raw JSON for payloads it could not dump as a string; keep them verbatim.
                using var document = JsonDocument.ParseValue(ref reader);
                payloads.Add(document.RootElement.GetRawText());
            }
        }
        return payloads;
    }

    private sealed record SourceFields(byte[]? Key, List<KeyValuePair<string, byte[]>> Headers, byte[]? Value)
    {
        public bool HasValue => Value is not null;
    }

    private static List<SourceFields> ReadSources(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray) throw new FormatException("source_messages is not an array");
        var sources = new List<SourceFields>();
        while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
        {
            byte[]? key = null;
            var headers = new List<KeyValuePair<string, byte[]>>();
            byte[]? sourceValue = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                switch (name)
                {
                    case "key":
                        key = reader.TokenType == JsonTokenType.Null ? null : reader.GetBytesFromBase64();
                        break;
                    case "headers":
                        while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
                        {
                            string? headerKey = null;
                            byte[]? headerValue = null;
                            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                            {
                                var field = reader.GetString();
                                reader.Read();
                                if (field == "key") headerKey = reader.GetString();
                                else if (field == "value" && reader.TokenType != JsonTokenType.Null) headerValue = reader.GetBytesFromBase64();
                                else reader.Skip();
                            }
                            if (headerKey is null) throw new FormatException("a source header has no key");
                            headers.Add(new(headerKey, headerValue!));
                        }
                        break;
                    case "value":
                        sourceValue = reader.TokenType == JsonTokenType.Null ? null : reader.GetBytesFromBase64();
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }
            sources.Add(new SourceFields(key, headers, sourceValue));
        }
        return sources;
    }
}
