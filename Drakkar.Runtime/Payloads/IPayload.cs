using System.Text.Json;

namespace Drakkar;

/// <summary>
/// Implemented by the source generator for every <see cref="PayloadAttribute"/> type: reflection-free writers and
/// readers the runtime reaches through static abstract members from generic code.
/// </summary>
public interface IPayload<TSelf> where TSelf : IPayload<TSelf>
{
    /// <summary>Writes <paramref name="value"/> as one JSON object (snake_case member names unless renamed).</summary>
    static abstract void WriteJson(Utf8JsonWriter writer, TSelf value);

    /// <summary>Reads one JSON object; <paramref name="reader"/> is positioned on its StartObject token. Throws <see cref="JsonException"/> naming the member that was wrong.</summary>
    static abstract TSelf ReadJson(ref Utf8JsonReader reader);

    /// <summary>Writes <paramref name="value"/> as one BSON document.</summary>
    static abstract void WriteBson(BsonWriter writer, TSelf value);

    /// <summary>The PostgreSQL columns, in the order <see cref="WriteRow"/> writes them.</summary>
    static abstract IReadOnlyList<PayloadColumn> Columns { get; }

    /// <summary>Writes one value per column, in <see cref="Columns"/> order.</summary>
    static abstract void WriteRow(IRowWriter writer, TSelf value);
}

/// <summary>A PostgreSQL column produced from a payload member.</summary>
/// <param name="Name">Column name (snake_case of the member, or its <c>[JsonPropertyName]</c>).</param>
/// <param name="DataTypeName">PostgreSQL type name the value is sent as (for example <c>text</c>, <c>int8</c>, <c>jsonb</c>).</param>
public sealed record PayloadColumn(string Name, string DataTypeName);

/// <summary>Receives one row's values, column by column, without boxing.</summary>
public interface IRowWriter
{
    /// <summary>Writes the next column's value; null writes SQL NULL.</summary>
    void Write<T>(T? value);

    /// <summary>Writes the next column as JSON produced by <paramref name="write"/> (for nested payloads, lists and maps).</summary>
    void WriteJson<TState>(TState state, Action<Utf8JsonWriter, TState> write);
}
