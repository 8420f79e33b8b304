using System.Buffers.Binary;
using System.Text;

namespace Drakkar;

/// <summary>
/// A forward-only BSON writer (bsonspec.org 1.1) used by generated payload code. Documents and arrays are
/// length-prefixed; the writer reserves the prefix and patches it when the document ends.
/// </summary>
public sealed class BsonWriter
{
    private byte[] _buffer;
    private int _length;
    private readonly Stack<(int Start, int ArrayIndex)> _open = new();
    private int _arrayIndex = -1;

    /// <summary>The deepest nesting of documents and arrays written (MongoDB stores no deeper document).</summary>
    internal const int MaxDepth = 100;

    public BsonWriter(int initialCapacity = 256) => _buffer = new byte[Math.Max(16, initialCapacity)];

    /// <summary>The bytes written so far.</summary>
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public byte[] ToArray() => WrittenSpan.ToArray();

    /// <summary>Clears the writer for the next document, keeping its buffer.</summary>
    public void Reset()
    {
        _length = 0;
        _open.Clear();
        _arrayIndex = -1;
    }

    /// <summary>Starts the top-level document.</summary>
    public void WriteStartDocument() => Open();

    /// <summary>Starts an embedded document under <paramref name="name"/> (null inside an array).</summary>
    public void WriteStartDocument(string? name)
    {
        Element(0x03, name);
        Open();
    }

    /// <summary>
    /// Writes the element header of an embedded document under <paramref name="name"/> (null inside an array) whose
    /// body the next <see cref="WriteStartDocument()"/> opens. Generated code nests a payload this way, so each
    /// payload type has a single BSON writer for both top-level and embedded use.
    /// </summary>
    public void WriteDocumentName(string? name) => Element(0x03, name);

    /// <summary>Starts an array under <paramref name="name"/> (null inside an array); items need no names.</summary>
    public void WriteStartArray(string? name)
    {
        Element(0x04, name);
        Open();
        _arrayIndex = 0;
    }

    /// <summary>Ends the innermost document or array.</summary>
    public void WriteEnd()
    {
        if (_open.Count == 0) throw new InvalidOperationException("BSON: WriteEnd without an open document.");
        Ensure(1);
        _buffer[_length++] = 0;
        var (start, outerIndex) = _open.Pop();
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(start), _length - start);
        _arrayIndex = outerIndex;
    }

    public void WriteNull(string? name) => Element(0x0A, name);

    public void WriteBoolean(string? name, bool value)
    {
        Element(0x08, name);
        Ensure(1);
        _buffer[_length++] = value ? (byte)1 : (byte)0;
    }

    public void WriteInt32(string? name, int value)
    {
        Element(0x10, name);
        Ensure(4);
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_length), value);
        _length += 4;
    }

    public void WriteInt64(string? name, long value)
    {
        Element(0x12, name);
        WriteRawInt64(value);
    }

    public void WriteDouble(string? name, double value)
    {
        Element(0x01, name);
        Ensure(8);
        BinaryPrimitives.WriteDoubleLittleEndian(_buffer.AsSpan(_length), value);
        _length += 8;
    }

    public void WriteString(string? name, string value)
    {
        Element(0x02, name);
        var size = Encoding.UTF8.GetByteCount(value);
        Ensure(size + 5);
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_length), size + 1);
        _length += 4;
        _length += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_length));
        _buffer[_length++] = 0;
    }

    /// <summary>UTC datetime: milliseconds since the Unix epoch.</summary>
    public void WriteDateTime(string? name, DateTimeOffset value)
    {
        Element(0x09, name);
        WriteRawInt64(value.ToUnixTimeMilliseconds());
    }

    /// <summary>A GUID as binary subtype 4 (UUID, RFC 4122 byte order).</summary>
    public void WriteGuid(string? name, Guid value)
    {
        Element(0x05, name);
        Ensure(21);
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_length), 16);
        _buffer[_length + 4] = 0x04;
        value.TryWriteBytes(_buffer.AsSpan(_length + 5), bigEndian: true, out _);
        _length += 21;
    }

    public void WriteBinary(string? name, ReadOnlySpan<byte> value)
    {
        Element(0x05, name);
        Ensure(value.Length + 5);
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_length), value.Length);
        _buffer[_length + 4] = 0x00;
        value.CopyTo(_buffer.AsSpan(_length + 5));
        _length += value.Length + 5;
    }

    /// <summary>A decimal as IEEE 754-2008 decimal128 (BID): the 96-bit coefficient with exponent -scale.</summary>
    public void WriteDecimal128(string? name, decimal value)
    {
        Element(0x13, name);
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(value, bits);
        ulong low = (uint)bits[0] | ((ulong)(uint)bits[1] << 32);
        ulong high = (uint)bits[2];
        var scale = (bits[3] >> 16) & 0xFF;
        var negative = bits[3] < 0;
        const int exponentBias = 6176;
        high |= (ulong)(exponentBias - scale) << 49;
        if (negative) high |= 1UL << 63;
        WriteRawInt64((long)low);
        WriteRawInt64((long)high);
    }

    private void WriteRawInt64(long value)
    {
        Ensure(8);
        BinaryPrimitives.WriteInt64LittleEndian(_buffer.AsSpan(_length), value);
        _length += 8;
    }

    private void Open()
    {
        // Generated code writes a nested payload by calling its writer: a payload that refers to itself would recurse
        // until the stack overflows and the process dies. MongoDB refuses such documents anyway.
        if (_open.Count >= MaxDepth)
            throw new InvalidOperationException($"BSON: documents and arrays nested more than {MaxDepth} levels deep (MongoDB's limit); does the payload refer to itself?");
        Ensure(4);
        _open.Push((_length, _arrayIndex));
        _arrayIndex = -1;
        _length += 4;
    }

    private void Element(byte type, string? name)
    {
        if (_open.Count == 0) throw new InvalidOperationException("BSON: an element must be inside a document.");
        Ensure(1);
        _buffer[_length++] = type;
        if (_arrayIndex >= 0)
        {
            Span<byte> digits = stackalloc byte[11];
            _arrayIndex++.TryFormat(digits, out var written, provider: System.Globalization.CultureInfo.InvariantCulture);
            Ensure(written + 1);
            digits[..written].CopyTo(_buffer.AsSpan(_length));
            _length += written;
        }
        else
        {
            ArgumentNullException.ThrowIfNull(name);
            var size = Encoding.UTF8.GetByteCount(name);
            Ensure(size + 1);
            _length += Encoding.UTF8.GetBytes(name, _buffer.AsSpan(_length));
        }
        _buffer[_length++] = 0;
    }

    private void Ensure(int extra)
    {
        if (_length + extra <= _buffer.Length) return;
        Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + extra));
    }
}
