using System.Text.Json;

namespace Drakkar;

/// <summary>Decodes typed input (UTF-8 JSON) through the generated reader.</summary>
internal static class PayloadDecoder
{
    public static (T? Payload, string? Error) Decode<T>(ReadOnlySpan<byte> utf8Json) where T : class, IPayload<T>
    {
        if (utf8Json.IsEmpty)
        {
            return (null, $"empty value cannot be decoded as {typeof(T).Name}");
        }
        try
        {
            var reader = new Utf8JsonReader(utf8Json);
            if (!reader.Read()) throw new JsonException("no JSON value");
            var payload = T.ReadJson(ref reader);
            // One JSON value and nothing after it but whitespace: reading on makes the reader refuse "{…} garbage"
            // ("… is invalid after a single JSON value"), which the generated reader, stopping at the value's end, did not.
            reader.Read();
            return (payload, null);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever the generated reader or the payload's own constructor throws (a validation exception, an
            // overflow, …) is a decode error of this message, never a failure of the worker.
            return (null, $"value is not a valid {typeof(T).Name}: {e.GetType().Name}: {e.Message}");
        }
    }
}
