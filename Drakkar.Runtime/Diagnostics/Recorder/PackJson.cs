using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace Drakkar.Diagnostics.Recorder;

/// <summary>
/// The UTF-8 text of one <c>event_packs</c> row: a JSON array of events, each an array of the <c>events</c> view's
/// columns. Written by hand into one reused buffer: <c>Utf8JsonWriter</c>'s per-value bookkeeping was most of what the
/// recorder's writer spent per event. Only SQLite's JSON functions read the text, so a string is escaped only where
/// JSON requires it (quote, backslash, control characters) and other characters are written as UTF-8.
/// </summary>
internal sealed class PackJson
{
    // What JSON requires to be escaped in a string: quote, backslash, control characters.
    private const string Escaped = "\"\\\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000A\u000B\u000C\u000D\u000E\u000F" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F";

    private static readonly SearchValues<char> NeedEscape = SearchValues.Create(Escaped);
    private static readonly SearchValues<byte> NeedEscapeAscii = SearchValues.Create(Encoding.ASCII.GetBytes(Escaped));

    private byte[] _buffer;
    private int _length;
    // Whether the next value of the array being written needs a comma before it.
    private bool _comma;

    public PackJson(int capacity) => _buffer = new byte[capacity];

    public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, _length);

    public void Reset()
    {
        _length = 0;
        _comma = false;
    }

    public void StartArray()
    {
        Separate();
        Byte((byte)'[');
        _comma = false;
    }

    public void EndArray()
    {
        Byte((byte)']');
        _comma = true;
    }

    public void Null()
    {
        Separate();
        Span(4);
        "null"u8.CopyTo(_buffer.AsSpan(_length));
        _length += 4;
    }

    public void Number(long value)
    {
        Separate();
        // Most numbers in a pack are one or two digits (offsets from the pack's base, kinds, attempts, exit codes).
        if ((ulong)value < 100)
        {
            Span(2);
            if (value >= 10) _buffer[_length++] = (byte)('0' + value / 10);
            _buffer[_length++] = (byte)('0' + value % 10);
            return;
        }
        int written;
        while (!Utf8Formatter.TryFormat(value, _buffer.AsSpan(_length), out written)) Grow(20);
        _length += written;
    }

    public void Number(long? value)
    {
        if (value is { } v) Number(v);
        else Null();
    }

    public void String(string? value)
    {
        if (value is null) Null();
        else String(value.AsSpan());
    }

    public void String(ReadOnlySpan<char> value)
    {
        Separate();
        Byte((byte)'"');
        while (true)
        {
            var plain = value.IndexOfAny(NeedEscape);
            var run = plain < 0 ? value : value[..plain];
            if (!run.IsEmpty)
            {
                Span(Encoding.UTF8.GetMaxByteCount(run.Length));
                _length += Encoding.UTF8.GetBytes(run, _buffer.AsSpan(_length));
            }
            if (plain < 0) break;
            Escape(value[plain]);
            value = value[(plain + 1)..];
        }
        Byte((byte)'"');
    }

    /// <summary>A string given as ASCII bytes (a task id kept in its event).</summary>
    public void Ascii(ReadOnlySpan<byte> value)
    {
        Separate();
        Byte((byte)'"');
        while (true)
        {
            var plain = value.IndexOfAny(NeedEscapeAscii);
            var run = plain < 0 ? value : value[..plain];
            Span(run.Length);
            run.CopyTo(_buffer.AsSpan(_length));
            _length += run.Length;
            if (plain < 0) break;
            Escape((char)value[plain]);
            value = value[(plain + 1)..];
        }
        Byte((byte)'"');
    }

    private void Escape(char c)
    {
        Span(6);
        var at = _buffer.AsSpan(_length);
        at[0] = (byte)'\\';
        var short1 = c switch { '"' => '"', '\\' => '\\', '\n' => 'n', '\r' => 'r', '\t' => 't', '\b' => 'b', '\f' => 'f', _ => '\0' };
        if (short1 != '\0')
        {
            at[1] = (byte)short1;
            _length += 2;
            return;
        }
        at[1] = (byte)'u';
        at[2] = (byte)'0';
        at[3] = (byte)'0';
        at[4] = (byte)"0123456789abcdef"[c >> 4];
        at[5] = (byte)"0123456789abcdef"[c & 0xF];
        _length += 6;
    }

    private void Separate()
    {
        if (_comma) Byte((byte)',');
        _comma = true;
    }

    private void Byte(byte b)
    {
        Span(1);
        _buffer[_length++] = b;
    }

    /// <summary>Makes room for <paramref name="bytes"/> more.</summary>
    private void Span(int bytes)
    {
        if (_buffer.Length - _length < bytes) Grow(bytes);
    }

    private void Grow(int bytes) => Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + bytes));
}
