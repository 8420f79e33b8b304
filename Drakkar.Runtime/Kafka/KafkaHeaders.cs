using Confluent.Kafka;

namespace Drakkar.Kafka;

/// <summary>Kafka record headers as Drakkar hands them on (to handlers, the DLQ, replays and probes).</summary>
internal static class KafkaHeaders
{
    /// <summary>
    /// The headers as name/value pairs, in record order: a header sent without a value reads as an empty array, never
    /// null (as a record's value does), so that <c>Value.Length</c> is safe on every header.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, byte[]>> Of(Headers? headers) =>
        headers is not { Count: > 0 } ? [] : [.. headers.Select(h => new KeyValuePair<string, byte[]>(h.Key, h.GetValueBytes() ?? []))];
}
