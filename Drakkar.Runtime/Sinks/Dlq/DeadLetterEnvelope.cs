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
    /// <exception cref="FormatException">The value is not a Drakkar DLQ record.</exception>
    public static IReadOnlyList<ReplayMessage> Parse(ReadOnlySpan<byte> value, byte[]? recordKey, IReadOnlyList<KeyValuePair<string, byte[]>> recordHeaders)
    {
        List<string>? payloads = null;
        List<SourceFields>? sources = null;
        var sourceFailure = false;
        var truncated = false;
        try
        {
            var reader = new Utf8JsonReader(value);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new FormatException("the value is not a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                switch (name)
                {
                    case "original_payloads":
                        payloads = ReadPayloads(ref reader);
                        break;
                    case "source_messages":
                        sources = ReadSources(ref reader);
                        break;
                    case "source_failure":
                        sourceFailure = reader.TokenType == JsonTokenType.True;
                        break;
                    case "truncated":
                        truncated = reader.TokenType == JsonTokenType.True;
                        break;
                    default:
                        reader.Skip();
                        break;
                }
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
        if (payloads is null) throw new FormatException("the record has no original_payloads");
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
