using System.Text.Json;
using Drakkar.Generators.Tests.Infrastructure;
using Drakkar.Generators.Tests.Payloads;

namespace Drakkar.Generators.Tests;

/// <summary>The generated JSON reader: round trips, defaults, and errors that name the member.</summary>
public sealed class JsonReaderTests
{
    public static TheoryData<int> ScalarCases => [0, 1, 2, 3];
    public static TheoryData<int> CustomerCases => [0, 1, 2];

    [Theory]
    [MemberData(nameof(ScalarCases))]
    public void Scalars_round_trip(int index) => AssertRoundTrip(SampleValues.Scalars()[index]);

    [Theory]
    [MemberData(nameof(CustomerCases))]
    public void Nested_payloads_and_collections_round_trip(int index) => AssertRoundTrip(SampleValues.Customers()[index]);

    [Fact]
    public void Reads_what_System_Text_Json_wrote_into_equal_values()
    {
        foreach (var value in SampleValues.Scalars())
        {
            var read = Json.Read<Scalars>(Json.SystemTextJson(value));
            Assert.Equal(value with { Blob = null }, read with { Blob = null });
            Assert.Equal(value.Blob, read.Blob);
        }
    }

    [Fact]
    public void Unknown_members_are_skipped_whatever_their_shape()
    {
        var value = Json.Read<Address>("""{"extra":{"deep":[1,{"x":null}]},"street":"s","more":[[]],"city":"c","zip":5,"z":"t"}""");

        Assert.Equal(new Address("s", "c", 5), value);
    }

    [Fact]
    public void Escaped_member_names_and_values_are_unescaped()
    {
        var value = Json.Read<Address>("""{"str\u0065et":"caf\u00e9 \"q\"","city":"\ud834\udd1e","zip":null}""");

        Assert.Equal(new Address("café \"q\"", "𝄞", null), value);
    }

    [Fact]
    public void Missing_nullable_and_defaulted_members_take_their_defaults()
    {
        Assert.Equal(new Address("s", "c", null), Json.Read<Address>("""{"street":"s","city":"c"}"""));
        Assert.Equal(new TimeoutPolicy(2, "retry"), Json.Read<TimeoutPolicy>("""{"seconds":2}"""));
    }

    [Fact]
    public void Settable_and_init_members_keep_their_initializers_when_absent()
    {
        var settings = Json.Read<Settings>("""{"name":"n"}""");

        Assert.Equal("n", settings.Name);
        Assert.Equal(3, settings.Retries);
        Assert.Equal(new TimeoutPolicy(5.0, "fail"), settings.Timeout);
        Assert.Empty(settings.Hosts);

        var full = Json.Read<Settings>("""{"name":"n","retries":9,"timeout":{"seconds":1,"on_timeout":"x"},"comment":"c","hosts":["a"]}""");
        Assert.Equal((9, new TimeoutPolicy(1, "x"), "c", "a"), (full.Retries, full.Timeout, full.Comment, full.Hosts.Single()));
    }

    [Fact]
    public void Enums_read_from_numbers_and_from_their_json_names()
    {
        var json = System.Text.Encoding.UTF8.GetString(Json.Generated(SampleValues.Scalars()[0]))
            .Replace("\"via\":\"Email\"", "\"via\":\"sms-text\"").Replace("\"level\":0", "\"level\":10");
        var value = Json.Read<Scalars>(json);

        Assert.Equal((Severity.High, Channel.Sms), (value.Level, value.Via));
        Assert.Equal(Channel.Push, Json.Read<Scalars>(json.Replace("\"via\":\"sms-text\"", "\"via\":2")).Via);
    }

    [Theory]
    [InlineData("""{"city":"c"}""", "Payload 'Address': required member 'street' is missing.")]
    [InlineData("""{"street":1,"city":"c"}""", "Payload 'Address' member 'street': expected a string but found Number.")]
    [InlineData("""{"street":null,"city":"c"}""", "Payload 'Address' member 'street': expected a string but found Null.")]
    [InlineData("""{"street":"s","city":"c","zip":"5"}""", "Payload 'Address' member 'zip': expected a number that fits Int32 but found String.")]
    [InlineData("""{"street":"s","city":"c","zip":1.5}""", "Payload 'Address' member 'zip': expected a number that fits Int32 but found Number.")]
    [InlineData("""{"street":"s","city":"c","zip":4294967296}""", "Payload 'Address' member 'zip': expected a number that fits Int32 but found Number.")]
    [InlineData("""["street"]""", "Payload 'Address': expected a JSON object but found StartArray.")]
    public void Errors_name_the_member_that_was_wrong(string json, string message)
    {
        var error = Assert.Throws<JsonException>(() => Json.Read<Address>(json));
        Assert.Equal(message, error.Message);
    }

    [Theory]
    [InlineData("""{"name":"n","timeout":[]}""", "Payload 'Settings' member 'timeout': expected an object but found StartArray.")]
    [InlineData("""{"name":"n","timeout":{"on_timeout":"x"}}""", "Payload 'TimeoutPolicy': required member 'seconds' is missing.")]
    [InlineData("""{"name":"n","hosts":["a",2]}""", "Payload 'Settings' member 'hosts': expected a string but found Number.")]
    [InlineData("""{"retries":1}""", "Payload 'Settings': required member 'name' is missing.")]
    public void Errors_inside_nested_values_name_the_innermost_member(string json, string message)
    {
        var error = Assert.Throws<JsonException>(() => Json.Read<Settings>(json));
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void Type_errors_in_enums_guids_dates_and_dictionaries_name_the_member()
    {
        var good = System.Text.Encoding.UTF8.GetString(Json.Generated(SampleValues.Scalars()[0]));
        Assert.Equal("Payload 'Scalars' member 'via': 'Fax' is not a Drakkar.Generators.Tests.Payloads.Channel name.",
            Assert.Throws<JsonException>(() => Json.Read<Scalars>(good.Replace("\"via\":\"Email\"", "\"via\":\"Fax\""))).Message);
        Assert.Equal("Payload 'Scalars' member 'id': expected a GUID string but found String.",
            Assert.Throws<JsonException>(() => Json.Read<Scalars>(good.Replace("\"id\":\"00000000-0000-0000-0000-000000000000\"", "\"id\":\"nope\""))).Message);
        Assert.Equal("Payload 'Scalars' member 'at': expected an ISO 8601 date and time string but found String.",
            Assert.Throws<JsonException>(() => Json.Read<Scalars>(good.Replace("\"at\":\"2024-02-29T23:59:58.123+00:00\"", "\"at\":\"yesterday\""))).Message);

        var customer = System.Text.Encoding.UTF8.GetString(Json.Generated(SampleValues.Customers()[1]));
        Assert.Equal("Payload 'Customer' member 'counters': expected a number that fits Int32 but found True.",
            Assert.Throws<JsonException>(() => Json.Read<Customer>(customer.Replace("\"counters\":{}", "\"counters\":{\"a\":true}"))).Message);
    }

    [Fact]
    public void Truncated_json_is_an_error_not_a_hang()
    {
        Assert.Throws<JsonException>(() =>
        {
            var reader = new Utf8JsonReader("""{"street":"s","ci"""u8, isFinalBlock: false, state: default);
            reader.Read();
            return Address.ReadJson(ref reader);
        });
    }

    [Fact]
    public void The_runtime_decoder_uses_the_generated_reader_for_typed_input()
    {
        var bytes = Json.Generated(new SearchSummary("r", "p", 3));
        var reader = new Utf8JsonReader(bytes);
        reader.Read();

        Assert.Equal(new SearchSummary("r", "p", 3), SearchSummary.ReadJson(ref reader));
    }

    private static void AssertRoundTrip<T>(T value) where T : IPayload<T>
    {
        var bytes = Json.Generated(value);
        var read = Json.Read<T>(bytes);
        Assert.Equal(System.Text.Encoding.UTF8.GetString(bytes), System.Text.Encoding.UTF8.GetString(Json.Generated(read)));
    }
}
