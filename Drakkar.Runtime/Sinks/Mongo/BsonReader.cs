using System.Buffers.Binary;
using System.Text;

namespace Drakkar.Sinks.Mongo;

/// <summary>A decoded BSON document: its elements in order. Enough to read server replies (and, in tests, commands).</summary>
internal sealed class BsonDocument(List<KeyValuePair<string, object?>> elements)
{
    public IReadOnlyList<KeyValuePair<string, object?>> Elements => elements;

    public object? this[string name] => TryGet(name, out var value) ? value : null;

    public bool TryGet(string name, out object? value)
    {
        foreach (var (key, v) in elements)
        {
            if (key != name) continue;
            value = v;
            return true;
        }
        value = null;
        return false;
    }

    /// <summary>The first element's name (a command's name).</summary>
    public string FirstName => elements.Count > 0 ? elements[0].Key : "";

    public double? Number(string name) => this[name] switch
    {
        int i => i,
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => null,
    };

    public string? String(string name) => this[name] as string;

    /// <summary>Array elements, in order (a BSON array is a document keyed "0", "1", …).</summary>
    public IEnumerable<object?> Values => elements.Select(e => e.Value);
}

/// <summary>BSON binary data with its subtype.</summary>
internal sealed record BsonBinary(byte Subtype, byte[] Data);

/// <summary>Decodes BSON (bsonspec.org 1.1). Types a sink never needs to interpret are kept as raw bytes.</summary>
internal static class BsonReader
{
    public static BsonDocument Read(ReadOnlySpan<byte> bytes) => Read(bytes, out _);

    /// <summary>Reads the document at the start of <paramref name="bytes"/>; <paramref name="length"/> is its size.</summary>
    public static BsonDocument Read(ReadOnlySpan<byte> bytes, out int length)
    {
        if (bytes.Length < 5) throw new FormatException("BSON: truncated document");
        length = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (length < 5 || length > bytes.Length || bytes[length - 1] != 0) throw new FormatException("BSON: bad document length");
        var elements = new List<KeyValuePair<string, object?>>();
        var position = 4;
        while (position < length - 1)
        {
            var type = bytes[position++];
            var name = CString(bytes, ref position);
            object? value;
            switch (type)
            {
                case 0x01: value = BinaryPrimitives.ReadDoubleLittleEndian(bytes[position..]); position += 8; break;
                case 0x02:
                    var size = BinaryPrimitives.ReadInt32LittleEndian(bytes[position..]);
                    value = Encoding.UTF8.GetString(bytes.Slice(position + 4, size - 1));
                    position += 4 + size;
                    break;
                case 0x03:
                case 0x04:
                    value = Read(bytes[position..], out var inner);
                    position += inner;
                    break;
                case 0x05:
                    var binary = BinaryPrimitives.ReadInt32LittleEndian(bytes[position..]);
                    value = new BsonBinary(bytes[position + 4], bytes.Slice(position + 5, binary).ToArray());
                    position += 5 + binary;
                    break;
                case 0x07: value = bytes.Slice(position, 12).ToArray(); position += 12; break;
                case 0x08: value = bytes[position++] != 0; break;
                case 0x09: value = DateTimeOffset.FromUnixTimeMilliseconds(BinaryPrimitives.ReadInt64LittleEndian(bytes[position..])); position += 8; break;
                case 0x0A: value = null; break;
                case 0x10: value = BinaryPrimitives.ReadInt32LittleEndian(bytes[position..]); position += 4; break;
                case 0x11:
                case 0x12: value = BinaryPrimitives.ReadInt64LittleEndian(bytes[position..]); position += 8; break;
                case 0x13: value = bytes.Slice(position, 16).ToArray(); position += 16; break;
                default: throw new FormatException($"BSON: element '{name}' has type 0x{type:x2}, which this reader does not handle");
            }
            elements.Add(new(name, value));
        }
        return new BsonDocument(elements);
    }

    private static string CString(ReadOnlySpan<byte> bytes, ref int position)
    {
        var end = bytes[position..].IndexOf((byte)0);
        if (end < 0) throw new FormatException("BSON: unterminated name");
        var text = Encoding.UTF8.GetString(bytes.Slice(position, end));
        position += end + 1;
        return text;
    }
}
