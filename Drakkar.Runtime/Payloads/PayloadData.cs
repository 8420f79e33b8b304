using System.Buffers;
using System.Text.Json;

namespace Drakkar;

/// <summary>A payload's data with its generated writers, erased to one type so sinks handle any payload.</summary>
public abstract class PayloadData
{
    /// <summary>The user's data object.</summary>
    public abstract object Value { get; }

    /// <summary>The data type's name, for errors and logs.</summary>
    public abstract string TypeName { get; }

    public abstract void WriteJson(Utf8JsonWriter writer);
    public abstract void WriteBson(BsonWriter writer);
    public abstract IReadOnlyList<PayloadColumn> Columns { get; }
    public abstract void WriteRow(IRowWriter writer);

    /// <summary>The data as compact UTF-8 JSON.</summary>
    public byte[] ToJsonBytes()
    {
        // One writer and buffer per thread, reused: sinks call this once per payload. Taken out of the slot while in
        // use, so a nested call (a writer that serializes another payload) gets fresh ones instead of sharing.
        var (buffer, writer) = t_jsonWriter ?? (new ArrayBufferWriter<byte>(256), new Utf8JsonWriter(Stream.Null, Serialization.JsonOutput.Compact));
        t_jsonWriter = null;
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        WriteJson(writer);
        writer.Flush();
        var json = buffer.WrittenSpan.ToArray();
        // A buffer grown by an unusually large payload is not kept.
        if (buffer.Capacity <= MaxKeptJsonBuffer) t_jsonWriter = (buffer, writer);
        return json;
    }

    private const int MaxKeptJsonBuffer = 64 * 1024;

    [ThreadStatic]
    private static (ArrayBufferWriter<byte> Buffer, Utf8JsonWriter Writer)? t_jsonWriter;

    /// <summary>The data as compact JSON text.</summary>
    public string ToJson() => System.Text.Encoding.UTF8.GetString(ToJsonBytes());

    public static PayloadData Of<T>(T value) where T : IPayload<T> => new PayloadData<T>(value);

    /// <summary>
    /// Whether <paramref name="error"/>, thrown by <see cref="WriteJson"/>, <see cref="WriteBson"/> or
    /// <see cref="ToJsonBytes"/>, means this data has no such form (a NaN or infinite number, a value that refers to
    /// itself, nesting too deep): the payload's own failure, which no retry changes. A sink fails that payload alone.
    /// </summary>
    public static bool IsUnwritable(Exception error) =>
        error is ArgumentException or InvalidOperationException or NotSupportedException or FormatException;
}

internal sealed class PayloadData<T>(T value) : PayloadData where T : IPayload<T>
{
    public override object Value => value!;
    public override string TypeName => typeof(T).Name;
    public override void WriteJson(Utf8JsonWriter writer) => T.WriteJson(writer, value);
    public override void WriteBson(BsonWriter writer) => T.WriteBson(writer, value);
    public override IReadOnlyList<PayloadColumn> Columns => T.Columns;
    public override void WriteRow(IRowWriter writer) => T.WriteRow(writer, value);
}
