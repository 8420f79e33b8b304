using System.Text.Json;

namespace Drakkar;

/// <summary>Decodes typed input (UTF-8 JSON) through the generated reader.</summary>
internal static class PayloadDecoder
{
    private static long _failures;

    /// <summary>How many values failed to decode since start (exported as a metric).</summary>
    public static long Failures => Interlocked.Read(ref _failures);

    public static (T? Payload, string? Error) Decode<T>(ReadOnlySpan<byte> utf8Json) where T : class, IPayload<T>
    {
        if (utf8Json.IsEmpty)
        {
            Interlocked.Increment(ref _failures);
            return (null, $"empty value cannot be decoded as {typeof(T).Name}");
        }
        try
        {
            var reader = new Utf8JsonReader(utf8Json);
            if (!reader.Read()) throw new JsonException("no JSON value");
            return (T.ReadJson(ref reader), null);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException)
        {
            Interlocked.Increment(ref _failures);
            return (null, $"value is not a valid {typeof(T).Name}: {e.Message}");
        }
    }
}
