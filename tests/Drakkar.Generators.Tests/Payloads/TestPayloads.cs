using System.Text.Json.Serialization;

namespace Drakkar.Generators.Tests.Payloads;

public enum Severity
{
    Low,
    Medium,
    High = 10,
}

[JsonConverter(typeof(JsonStringEnumConverter<Channel>))]
public enum Channel
{
    Email,
    [JsonStringEnumMemberName("sms-text")] Sms,
    Push,
}

[Flags]
[JsonConverter(typeof(JsonStringEnumConverter<Access>))]
public enum Access
{
    None = 0,
    Read = 1,
    Write = 2,
}

/// <summary>Every scalar kind the writers support, as a positional record.</summary>
[Payload]
public sealed partial record Scalars(
    string Text,
    string? MaybeText,
    bool Flag,
    byte UInt8,
    sbyte Int8,
    short Int16,
    ushort UInt16,
    int Int32,
    uint UInt32,
    long Int64,
    ulong UInt64,
    float Single,
    double Double,
    decimal Money,
    DateTime When,
    DateTimeOffset At,
    Guid Id,
    byte[]? Blob,
    Severity Level,
    Channel Via,
    int? MaybeNumber,
    DateTimeOffset? MaybeAt,
    Severity? MaybeLevel);

[Payload]
public sealed partial record Address(string Street, string City, int? Zip);

/// <summary>Nesting, collections and dictionaries, with renamed and ignored members.</summary>
[Payload]
public sealed partial record Customer(
    Guid CustomerId,
    string DisplayName,
    Address Home,
    Address? Work,
    IReadOnlyList<string> Tags,
    List<int> Scores,
    string[] Aliases,
    IEnumerable<Address> PastAddresses,
    Dictionary<string, int> Counters,
    IReadOnlyDictionary<string, Address?> Contacts,
    List<List<double>> Matrix,
    IReadOnlyList<Channel> Channels,
    Access Rights)
{
    [JsonPropertyName("legacyID")]
    public string? LegacyId { get; init; }

    [JsonIgnore]
    public string Secret { get; init; } = "hidden";

    public int TagCount => Tags.Count;
}

/// <summary>A class with settable, init-only and required members instead of a constructor.</summary>
[Payload]
public sealed partial class Settings
{
    public required string Name { get; init; }
    public int Retries { get; set; } = 3;
    public TimeoutPolicy Timeout { get; init; } = new(5.0, "fail");
    public string? Comment { get; set; }
    public IList<string> Hosts { get; set; } = [];
}

[Payload]
public sealed partial record TimeoutPolicy(double Seconds, string OnTimeout = "retry");

/// <summary>The payload of API.md's example: a sample of what a Kafka or PostgreSQL sink carries.</summary>
[Payload]
public sealed partial record SearchSummary(string RequestId, string Pattern, int MatchCount);

/// <summary>Columns of every PostgreSQL type the row writer produces.</summary>
[Payload]
public sealed partial record RowSample(
    string Text,
    string? NullText,
    bool Flag,
    byte Small,
    short Int16,
    ushort UInt16,
    int Int32,
    uint UInt32,
    long Int64,
    ulong UInt64,
    float Single,
    double Double,
    decimal Money,
    DateTime When,
    DateTimeOffset At,
    Guid Id,
    byte[] Blob,
    Severity Level,
    Channel Via,
    int? MaybeNumber,
    long? NoNumber,
    DateTimeOffset? NoAt,
    Address Nested,
    IReadOnlyList<string> Tags,
    Dictionary<string, int>? NoMap);

/// <summary>Inheritance between payloads, ignore conditions and explicit ordering.</summary>
[Payload]
public partial class Animal
{
    public string Name { get; set; } = "";

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Nickname { get; set; }
}

[Payload]
public sealed partial class Dog : Animal
{
    [JsonPropertyOrder(-1)]
    public int Legs { get; init; } = 4;

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int Tricks { get; set; }

    public string @Event { get; set; } = "bark";
}
