using System.Text;

namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>A span as an OTLP collector received it (ids in lowercase hex, empty parent for a root).</summary>
public sealed record OtlpSpan(string ServiceName, string Name, string TraceId, string SpanId, string ParentSpanId, int Kind,
    IReadOnlyDictionary<string, string> Attributes, IReadOnlyList<string> LinkedSpanIds, int StatusCode);

/// <summary>
/// A collector stand-in: an OTLP/HTTP endpoint on loopback (an <see cref="HttpReceiver"/>, a real
/// <see cref="System.Net.HttpListener"/>) that decodes each <c>ExportTraceServiceRequest</c> protobuf as far as a test
/// needs: resource service name, span names, ids, parent ids, kind, string/int attributes, links and status code.
/// </summary>
public sealed class OtlpReceiver : IDisposable
{
    private readonly HttpReceiver _http = new();

    /// <summary>The base URL a worker's <c>telemetry.otlp_endpoint</c> takes.</summary>
    public string Endpoint => $"http://127.0.0.1:{_http.Port}";

    public IReadOnlyList<OtlpSpan> Spans => [.. _http.Requests.Where(r => r.Path == "/v1/traces").SelectMany(r => DecodeTraces(r.Bytes))];

    /// <summary>Every request as <c>METHOD path content-type</c>.</summary>
    public IReadOnlyList<string> Requests => [.. _http.Requests.Select(r => $"{r.Method} {r.Path} {r.Headers.GetValueOrDefault("Content-Type")}")];

    /// <summary>The status every following export is answered with (a collector that is overloaded, or back).</summary>
    public void RespondWith(int status) => _http.RespondWith(status);

    public void Dispose() => _http.Dispose();

    /// <summary>ExportTraceServiceRequest: 1 resource_spans → (1 resource → 1 attributes; 2 scope_spans → 2 spans).</summary>
    private static IEnumerable<OtlpSpan> DecodeTraces(byte[] request)
    {
        foreach (var resourceSpans in Fields(request).Where(f => f.Number == 1))
        {
            var fields = Fields(resourceSpans.Bytes);
            var resource = fields.Where(f => f.Number == 1).Select(f => Attributes(Fields(f.Bytes).Where(a => a.Number == 1))).FirstOrDefault() ?? [];
            var service = resource.GetValueOrDefault("service.name", "");
            foreach (var scopeSpans in fields.Where(f => f.Number == 2))
                foreach (var span in Fields(scopeSpans.Bytes).Where(f => f.Number == 2))
                    yield return Span(service, Fields(span.Bytes));
        }
    }

    /// <summary>Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 9 attributes, 13 links (2 span_id), 15 status (3 code).</summary>
    private static OtlpSpan Span(string service, List<Field> span)
    {
        string Hex(int number) => Convert.ToHexStringLower(span.FirstOrDefault(f => f.Number == number)?.Bytes ?? []);
        var links = span.Where(f => f.Number == 13).Select(l => Convert.ToHexStringLower(Fields(l.Bytes).First(f => f.Number == 2).Bytes)).ToList();
        var status = span.FirstOrDefault(f => f.Number == 15) is { } s ? (int)(Fields(s.Bytes).FirstOrDefault(f => f.Number == 3)?.Value ?? 0) : 0;
        return new OtlpSpan(service, Encoding.UTF8.GetString(span.First(f => f.Number == 5).Bytes), Hex(1), Hex(2), Hex(4),
            (int)(span.FirstOrDefault(f => f.Number == 6)?.Value ?? 0), Attributes(span.Where(f => f.Number == 9)),
            links, status);
    }

    /// <summary>KeyValue messages (1 key, 2 AnyValue: 1 string_value, 3 int_value) as text.</summary>
    private static Dictionary<string, string> Attributes(IEnumerable<Field> keyValues)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var keyValue in keyValues)
        {
            var pair = Fields(keyValue.Bytes);
            var key = Encoding.UTF8.GetString(pair.First(f => f.Number == 1).Bytes);
            var value = Fields(pair.First(f => f.Number == 2).Bytes).FirstOrDefault();
            attributes[key] = value switch
            {
                { Number: 1 } => Encoding.UTF8.GetString(value.Bytes),
                { Number: 3 } => ((long)value.Value).ToString(System.Globalization.CultureInfo.InvariantCulture),
                _ => "",
            };
        }
        return attributes;
    }

    private sealed record Field(int Number, ulong Value, byte[] Bytes);

    /// <summary>The top-level fields of a protobuf message (wire types 0, 1, 2 and 5).</summary>
    private static List<Field> Fields(byte[] message)
    {
        var fields = new List<Field>();
        var position = 0;
        while (position < message.Length)
        {
            var tag = Varint(message, ref position);
            var number = (int)(tag >> 3);
            switch (tag & 7)
            {
                case 0:
                    fields.Add(new Field(number, Varint(message, ref position), []));
                    break;
                case 1:
                    fields.Add(new Field(number, BitConverter.ToUInt64(message, position), message[position..(position + 8)]));
                    position += 8;
                    break;
                case 2:
                    var length = (int)Varint(message, ref position);
                    fields.Add(new Field(number, 0, message[position..(position + length)]));
                    position += length;
                    break;
                case 5:
                    fields.Add(new Field(number, BitConverter.ToUInt32(message, position), message[position..(position + 4)]));
                    position += 4;
                    break;
                default:
                    throw new InvalidDataException($"wire type {tag & 7} at byte {position} is not protobuf this receiver reads");
            }
        }
        return fields;
    }

    private static ulong Varint(byte[] message, ref int position)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = message[position++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return value;
        }
    }
}
