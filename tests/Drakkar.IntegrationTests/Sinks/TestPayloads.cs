using System.Text.Json;

namespace Drakkar.IntegrationTests.Sinks;

// Hand-written the way the generator will emit them: snake_case JSON, one column per member.

/// <summary>A typical result payload: text, numbers, a nullable member and a list (a jsonb column).</summary>
public sealed record Reading(string Id, int Count, double Score, string? Note, IReadOnlyList<string> Tags) : IPayload<Reading>
{
    private static readonly IReadOnlyList<PayloadColumn> ColumnList =
    [
        new("id", "text"), new("count", "integer"), new("score", "double precision"), new("note", "text"), new("tags", "jsonb"),
    ];

    public static IReadOnlyList<PayloadColumn> Columns => ColumnList;

    public static void WriteJson(Utf8JsonWriter writer, Reading value)
    {
        writer.WriteStartObject();
        writer.WriteString("id", value.Id);
        writer.WriteNumber("count", value.Count);
        writer.WriteNumber("score", value.Score);
        if (value.Note is null) writer.WriteNull("note");
        else writer.WriteString("note", value.Note);
        WriteTags(writer, value.Tags);
        writer.WriteEndObject();
    }

    public static Reading ReadJson(ref Utf8JsonReader reader)
    {
        string id = "", note = "";
        int count = 0;
        double score = 0;
        var hasNote = false;
        var tags = new List<string>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var name = reader.GetString();
            reader.Read();
            switch (name)
            {
                case "id": id = reader.GetString()!; break;
                case "count": count = reader.GetInt32(); break;
                case "score": score = reader.GetDouble(); break;
                case "note":
                    hasNote = reader.TokenType != JsonTokenType.Null;
                    if (hasNote) note = reader.GetString()!;
                    break;
                case "tags":
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) tags.Add(reader.GetString()!);
                    break;
                default: reader.Skip(); break;
            }
        }
        return new Reading(id, count, score, hasNote ? note : null, tags);
    }

    public static void WriteBson(BsonWriter writer, Reading value)
    {
        writer.WriteStartDocument();
        writer.WriteString("id", value.Id);
        writer.WriteInt32("count", value.Count);
        writer.WriteDouble("score", value.Score);
        if (value.Note is null) writer.WriteNull("note");
        else writer.WriteString("note", value.Note);
        writer.WriteStartArray("tags");
        foreach (var tag in value.Tags) writer.WriteString(null, tag);
        writer.WriteEnd();
        writer.WriteEnd();
    }

    public static void WriteRow(IRowWriter writer, Reading value)
    {
        writer.Write(value.Id);
        writer.Write(value.Count);
        writer.Write(value.Score);
        writer.Write(value.Note);
        writer.WriteJson(value.Tags, WriteTagsArray);
    }

    private static void WriteTags(Utf8JsonWriter writer, IReadOnlyList<string> tags)
    {
        writer.WritePropertyName("tags");
        WriteTagsArray(writer, tags);
    }

    private static void WriteTagsArray(Utf8JsonWriter writer, IReadOnlyList<string> tags)
    {
        writer.WriteStartArray();
        foreach (var tag in tags) writer.WriteStringValue(tag);
        writer.WriteEndArray();
    }

    public static Reading Sample(int i) => new($"r-{i}", i, i * 0.5, i % 3 == 0 ? null : $"note {i} ✓", [$"t{i}", "x"]);
}

/// <summary>A keyed payload for upserts: a later <see cref="Sequence"/> replaces an earlier row with the same key.</summary>
public sealed record Stamp(string Key, long Sequence, DateTimeOffset At) : IPayload<Stamp>
{
    private static readonly IReadOnlyList<PayloadColumn> ColumnList = [new("key", "text"), new("sequence", "bigint"), new("at", "timestamp with time zone")];

    public static IReadOnlyList<PayloadColumn> Columns => ColumnList;

    public static void WriteJson(Utf8JsonWriter writer, Stamp value)
    {
        writer.WriteStartObject();
        writer.WriteString("key", value.Key);
        writer.WriteNumber("sequence", value.Sequence);
        writer.WriteString("at", value.At);
        writer.WriteEndObject();
    }

    public static Stamp ReadJson(ref Utf8JsonReader reader)
    {
        string key = "";
        long sequence = 0;
        DateTimeOffset at = default;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var name = reader.GetString();
            reader.Read();
            switch (name)
            {
                case "key": key = reader.GetString()!; break;
                case "sequence": sequence = reader.GetInt64(); break;
                case "at": at = reader.GetDateTimeOffset(); break;
                default: reader.Skip(); break;
            }
        }
        return new Stamp(key, sequence, at);
    }

    public static void WriteBson(BsonWriter writer, Stamp value)
    {
        writer.WriteStartDocument();
        writer.WriteString("key", value.Key);
        writer.WriteInt64("sequence", value.Sequence);
        writer.WriteDateTime("at", value.At);
        writer.WriteEnd();
    }

    public static void WriteRow(IRowWriter writer, Stamp value)
    {
        writer.Write(value.Key);
        writer.Write(value.Sequence);
        writer.Write(value.At);
    }
}

/// <summary>A payload whose column names come from outside, to prove identifiers are checked.</summary>
public sealed record Oddly(string Column, string Value) : IPayload<Oddly>
{
    // A plain static, not an AsyncLocal: sinks write from the delivery engine's own flow. Only the PostgreSQL sink
    // tests use this type, and they run one at a time (one collection).
    private static volatile string? _columnOverride;

    /// <summary>The column name <see cref="Columns"/> reports (set by the test that is running).</summary>
    public static string ColumnName { get => _columnOverride ?? "value"; set => _columnOverride = value; }

    public static IReadOnlyList<PayloadColumn> Columns => [new(ColumnName, "text")];

    public static void WriteJson(Utf8JsonWriter writer, Oddly value)
    {
        writer.WriteStartObject();
        writer.WriteString("value", value.Value);
        writer.WriteEndObject();
    }

    public static Oddly ReadJson(ref Utf8JsonReader reader)
    {
        reader.Skip();
        return new Oddly("value", "");
    }

    public static void WriteBson(BsonWriter writer, Oddly value)
    {
        writer.WriteStartDocument();
        writer.WriteString("value", value.Value);
        writer.WriteEnd();
    }

    public static void WriteRow(IRowWriter writer, Oddly value) => writer.Write(value.Value);
}
