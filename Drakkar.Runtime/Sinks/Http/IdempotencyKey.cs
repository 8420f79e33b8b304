using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Drakkar.Sinks.Http;

/// <summary>
/// The <c>Idempotency-Key</c> of one payload's request (<c>idempotency_key: true</c>): a UUID (RFC 9562 version 8,
/// from SHA-256) of where the payload came from — consumer group, sink instance, source topic and partition, the
/// offsets of the hook call's messages, which hook call (<see cref="Pipeline.DeliveryOrigin.Hook"/>) and the payload's
/// index among that call's payloads for the instance. Nothing in it changes between attempts or runs, so a retry and a
/// redelivery after a crash carry the key of the first request, and a receiver that remembers keys drops the repeats.
/// The value is a quoted string, the structured-field form the IETF draft (draft-ietf-httpapi-idempotency-key-header)
/// gives the header; a receiver that treats the key as opaque text sees the same text every time.
/// </summary>
internal static class IdempotencyKey
{
    public const string Header = "Idempotency-Key";

    public static string Of(string consumerGroup, string sink, PayloadSource source)
    {
        var origin = source.Origin;
        var identity = new StringBuilder("drakkar idempotency-key 1\n")
            .Append(consumerGroup).Append('\n')
            .Append(sink).Append('\n')
            .Append(origin.Topic).Append('\n')
            .Append(origin.Partition.ToString(CultureInfo.InvariantCulture)).Append('\n')
            .AppendJoin(',', origin.Offsets.Select(o => o.ToString(CultureInfo.InvariantCulture))).Append('\n')
            .Append(origin.Hook).Append('\n')
            .Append(source.Index.ToString(CultureInfo.InvariantCulture));
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(identity.ToString()), hash);
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80); // version 8: custom, here name-based on SHA-256
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80); // the RFC 9562 variant
        var hex = Convert.ToHexStringLower(hash[..16]);
        return $"\"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}\"";
    }
}
