using System.Buffers;
using System.Text;
using System.Text.Json;
using Npgsql;

namespace Drakkar.Sinks.Postgres;

/// <summary>Turns generated <c>WriteRow</c> calls into typed, positional parameters (no boxing for non-null values).</summary>
internal sealed class ParameterRowWriter(NpgsqlParameterCollection parameters, IReadOnlyList<PayloadColumn> columns) : IRowWriter
{
    private int _column;

    /// <summary>Starts the next row; <see cref="EndRow"/> checks the generated code wrote exactly one value per column.</summary>
    public void NextRow() => _column = 0;

    public void EndRow()
    {
        if (_column != columns.Count) throw RowShape(_column, columns.Count);
    }

    public void Write<T>(T? value)
    {
        var type = NextType();
        if (value is null)
        {
            parameters.Add(new NpgsqlParameter { Value = DBNull.Value, DataTypeName = type });
            return;
        }
        // timestamptz only takes UTC offsets; the instant is what matters, so normalise instead of failing.
        if (typeof(T) == typeof(DateTimeOffset))
        {
            var instant = (DateTimeOffset)(object)value;
            parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = instant.ToUniversalTime(), DataTypeName = type });
            return;
        }
        parameters.Add(new NpgsqlParameter<T> { TypedValue = value, DataTypeName = type });
    }

    public void WriteJson<TState>(TState state, Action<Utf8JsonWriter, TState> write) =>
        parameters.Add(new NpgsqlParameter<string> { TypedValue = JsonText.Of(state, write), DataTypeName = NextType() });

    private string NextType() =>
        _column < columns.Count ? columns[_column++].DataTypeName : throw RowShape(_column + 1, columns.Count);

    internal static InvalidOperationException RowShape(int written, int declared) =>
        new($"A payload's WriteRow wrote {written} values for {declared} declared columns; the generated row binder and Columns disagree.");
}

/// <summary>Feeds generated <c>WriteRow</c> calls into a binary COPY.</summary>
internal sealed class CopyRowWriter(NpgsqlBinaryImporter importer, IReadOnlyList<PayloadColumn> columns) : IRowWriter
{
    private int _column;

    public void StartRow()
    {
        importer.StartRow();
        _column = 0;
    }

    public void EndRow()
    {
        if (_column != columns.Count) throw ParameterRowWriter.RowShape(_column, columns.Count);
    }

    public void Write<T>(T? value)
    {
        var type = NextType();
        if (value is null)
        {
            importer.WriteNull();
            return;
        }
        if (typeof(T) == typeof(DateTimeOffset))
        {
            importer.Write(((DateTimeOffset)(object)value).ToUniversalTime(), type);
            return;
        }
        importer.Write(value, type);
    }

    public void WriteJson<TState>(TState state, Action<Utf8JsonWriter, TState> write) => importer.Write(JsonText.Of(state, write), NextType());

    private string NextType() =>
        _column < columns.Count ? columns[_column++].DataTypeName : throw ParameterRowWriter.RowShape(_column + 1, columns.Count);
}

internal static class JsonText
{
    public static string Of<TState>(TState state, Action<Utf8JsonWriter, TState> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, Serialization.JsonOutput.Compact)) write(writer, state);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
