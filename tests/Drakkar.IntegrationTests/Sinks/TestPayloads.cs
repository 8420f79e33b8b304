using System.Text.Json;

namespace Drakkar.IntegrationTests.Sinks;

// Reading and Stamp are generated from [Payload]; Oddly is written by hand because its column name is set by the test
// that runs (a generated payload's columns are fixed at build time).

/// <summary>A typical result payload: text, numbers, a nullable member and a list (a jsonb column).</summary>
[Payload]
public sealed partial record Reading(string Id, int Count, double Score, string? Note, IReadOnlyList<string> Tags)
{
    public static Reading Sample(int i) => new($"r-{i}", i, i * 0.5, i % 3 == 0 ? null : $"note {i} ✓", [$"t{i}", "x"]);
}

/// <summary>A keyed payload for upserts: a later <see cref="Sequence"/> replaces an earlier row with the same key.</summary>
[Payload]
public sealed partial record Stamp(string Key, long Sequence, DateTimeOffset At);

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

/// <summary>A payload that can refer to itself (a linked list closed into a ring): no JSON or BSON form exists.</summary>
[Payload]
public sealed partial record Link(string Id)
{
    public Link? Next { get; set; }

    public static Link Ring(string id)
    {
        var link = new Link(id);
        link.Next = link;
        return link;
    }
}
