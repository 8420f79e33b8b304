using System.Text;
using Drakkar.Generators.Tests.Infrastructure;
using Drakkar.Generators.Tests.Payloads;

namespace Drakkar.Generators.Tests;

/// <summary>The generated JSON writer produces exactly System.Text.Json's bytes (snake_case naming policy).</summary>
public sealed class JsonWriterTests
{
    public static TheoryData<int> ScalarCases => Indexes(SampleValues.Scalars().Length);
    public static TheoryData<int> CustomerCases => Indexes(SampleValues.Customers().Length);
    public static TheoryData<int> SettingsCases => Indexes(SampleValues.Settings().Length);

    [Theory]
    [MemberData(nameof(ScalarCases))]
    public void Scalars_match_System_Text_Json(int index) => AssertSameBytes(SampleValues.Scalars()[index]);

    [Theory]
    [MemberData(nameof(CustomerCases))]
    public void Nested_payloads_collections_and_dictionaries_match_System_Text_Json(int index) =>
        AssertSameBytes(SampleValues.Customers()[index]);

    [Theory]
    [MemberData(nameof(SettingsCases))]
    public void Classes_with_settable_and_init_members_match_System_Text_Json(int index) =>
        AssertSameBytes(SampleValues.Settings()[index]);

    [Fact]
    public void Local_times_match_System_Text_Json()
    {
        var value = SampleValues.Scalars()[0] with { When = new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Local) };
        AssertSameBytes(value);
    }

    [Fact]
    public void Renamed_ignored_and_computed_members_follow_System_Text_Json_rules()
    {
        var json = Encoding.UTF8.GetString(Json.Generated(SampleValues.Customers()[0]));

        Assert.Contains("\"legacyID\":\"L-1\"", json);
        Assert.Contains("\"tag_count\":3", json);
        Assert.DoesNotContain("secret", json);
        Assert.StartsWith("{\"customer_id\":\"6d2e1f0a-1b2c-4d5e-8f90-a1b2c3d4e5f6\",\"display_name\":\"Ada Lovelace\"", json);
    }

    [Fact]
    public void Derived_payloads_ignore_conditions_and_ordering_match_System_Text_Json()
    {
        AssertSameBytes(new Dog { Name = "rex" });
        AssertSameBytes(new Dog { Name = "rex", Nickname = "r", Tricks = 2, Legs = 3, Event = "e" });
        AssertSameBytes(new Animal { Name = "generic" });

        var dog = Json.Read<Dog>("""{"legs":3,"name":"n","event":"howl"}""");
        Assert.Equal((3, "n", "howl", 0, null), (dog.Legs, dog.Name, dog.Event, dog.Tricks, dog.Nickname));
        Assert.Equal(4, Json.Read<Dog>("""{"name":"n"}""").Legs);
    }

    [Fact]
    public void A_null_payload_writes_null()
    {
        Assert.Equal("null"u8.ToArray(), Json.Generated<Address>(null!));
        Assert.Equal(Json.SystemTextJson<Address?>(null), Json.Generated<Address>(null!));
    }

    [Fact]
    public void Payload_data_carries_the_generated_writer_to_sinks()
    {
        var summary = new SearchSummary("r-1", "err.*", 7);
        var payload = KafkaPayload.Of(summary, sink: "results");

        Assert.Equal("{\"request_id\":\"r-1\",\"pattern\":\"err.*\",\"match_count\":7}", payload.Data.ToJson());
        Assert.Equal(["request_id", "pattern", "match_count"], payload.Data.Columns.Select(c => c.Name));
    }

    private static void AssertSameBytes<T>(T value) where T : IPayload<T>
    {
        var expected = Json.SystemTextJson(value);
        var actual = Json.Generated(value);
        Assert.Equal(Encoding.UTF8.GetString(expected), Encoding.UTF8.GetString(actual));
        Assert.Equal(expected, actual);
    }

    private static TheoryData<int> Indexes(int count)
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < count; i++) data.Add(i);
        return data;
    }
}
