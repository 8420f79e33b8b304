using System.Globalization;
using System.Text.Json;
using Drakkar.Generators.Tests.Infrastructure;
using Drakkar.Generators.Tests.Payloads;

namespace Drakkar.Generators.Tests;

/// <summary>Generated BSON, decoded by Debian's python3-bson and compared field by field.</summary>
public sealed class BsonWriterTests
{
    [Fact]
    public void Scalars_decode_to_the_same_values_with_the_expected_BSON_types()
    {
        foreach (var value in SampleValues.Scalars())
        {
            var document = Decode(value);

            Assert.Equal(JsonNames(value), document.FieldNames());
            document.Field("text").AssertValue("string", value.Text);
            document.Field("maybe_text").AssertValue(value.MaybeText is null ? "null" : "string", value.MaybeText);
            document.Field("flag").AssertValue("bool", value.Flag ? "True" : "False");
            document.Field("u_int8").AssertValue("int32", Invariant(value.UInt8));
            document.Field("int8").AssertValue("int32", Invariant(value.Int8));
            document.Field("int16").AssertValue("int32", Invariant(value.Int16));
            document.Field("u_int16").AssertValue("int32", Invariant(value.UInt16));
            document.Field("int32").AssertValue("int32", Invariant(value.Int32));
            document.Field("u_int32").AssertValue("int64", Invariant(value.UInt32));
            document.Field("int64").AssertValue("int64", Invariant(value.Int64));
            AssertDecimal(document.Field("u_int64"), value.UInt64);
            AssertDouble(document.Field("single"), value.Single);
            AssertDouble(document.Field("double"), value.Double);
            AssertDecimal(document.Field("money"), value.Money);
            var when = value.When.Kind == DateTimeKind.Local ? value.When.ToUniversalTime() : DateTime.SpecifyKind(value.When, DateTimeKind.Utc);
            document.Field("when").AssertValue("datetime", Invariant(new DateTimeOffset(when).ToUnixTimeMilliseconds()));
            document.Field("at").AssertValue("datetime", Invariant(value.At.ToUnixTimeMilliseconds()));
            document.Field("id").AssertValue("uuid", value.Id.ToString());
            if (value.Blob is null) document.Field("blob").AssertValue("null", null);
            else Assert.Equal(["binary", "0", Convert.ToHexStringLower(value.Blob)], document.Field("blob").EnumerateArray().Select(e => e.ToString()));
            document.Field("level").AssertValue("int32", Invariant((int)value.Level));
            document.Field("via").AssertValue("string", JsonString(value.Via));
            document.Field("maybe_number").AssertValue(value.MaybeNumber is null ? "null" : "int32", value.MaybeNumber?.ToString(CultureInfo.InvariantCulture));
            document.Field("maybe_at").AssertValue(value.MaybeAt is null ? "null" : "datetime", value.MaybeAt?.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
            document.Field("maybe_level").AssertValue(value.MaybeLevel is null ? "null" : "int32", value.MaybeLevel is { } l ? Invariant((int)l) : null);
        }
    }

    [Fact]
    public void Nested_payloads_arrays_and_dictionaries_become_documents_and_arrays()
    {
        var value = SampleValues.Customers()[0];
        var document = Decode(value);

        Assert.Equal(JsonNames(value), document.FieldNames());
        var home = document.Field("home");
        Assert.Equal(["street", "city", "zip"], home.FieldNames());
        home.Field("street").AssertValue("string", "12 St James's Sq");
        home.Field("zip").AssertValue("null", null);
        document.Field("work").Field("zip").AssertValue("int32", "10115");
        Assert.Equal(["vip", "ünïcödé", ""], document.Field("tags").Items().Select(i => i[1].GetString()));
        Assert.Equal(["1", "-2", "2147483647"], document.Field("scores").Items().Select(i => i[1].GetString()));
        var past = document.Field("past_addresses").Items();
        Assert.Equal(2, past.Count);
        past[1].Field("street").AssertValue("string", "p");
        var counters = document.Field("counters");
        Assert.Equal(["clicks", "naïve key \"q\"", ""], counters.FieldNames());
        counters.Field("naïve key \"q\"").AssertValue("int32", "-1");
        document.Field("contacts").Field("none").AssertValue("null", null);
        document.Field("contacts").Field("home").Field("city").AssertValue("string", "b");
        var matrix = document.Field("matrix").Items();
        Assert.Equal(["1.5", "-0.0"], matrix[0].Items().Select(i => i[1].GetString()));
        Assert.Empty(matrix[1].Items());
        Assert.Equal(["sms-text", "Email", "9"], document.Field("channels").Items().Select(i => i[1].GetString()));
        document.Field("rights").AssertValue("string", "Read, Write");
        document.Field("legacyID").AssertValue("string", "L-1");
        document.Field("tag_count").AssertValue("int32", "3");
    }

    [Fact]
    public void A_class_payload_writes_its_members_and_nulls()
    {
        var document = Decode(SampleValues.Settings()[2]);

        Assert.Equal(["name", "retries", "timeout", "comment", "hosts"], document.FieldNames());
        document.Field("retries").AssertValue("int32", "3");
        document.Field("timeout").AssertValue("null", null);
        document.Field("hosts").AssertValue("null", null);
    }

    [Fact]
    public void Payload_data_writes_the_same_document_for_the_mongo_sink()
    {
        var summary = new SearchSummary("r", "p", 2);
        var direct = new BsonWriter();
        SearchSummary.WriteBson(direct, summary);
        var viaPayload = new BsonWriter();
        MongoPayload.Of("summaries", summary).Data.WriteBson(viaPayload);

        Assert.Equal(direct.ToArray(), viaPayload.ToArray());
        PythonBson.Decode(viaPayload.WrittenSpan).Field("match_count").AssertValue("int32", "2");
    }

    private static JsonElement Decode<T>(T value) where T : IPayload<T>
    {
        var writer = new BsonWriter();
        T.WriteBson(writer, value);
        return PythonBson.Decode(writer.WrittenSpan);
    }

    private static List<string> JsonNames<T>(T value) where T : IPayload<T>
    {
        using var json = JsonDocument.Parse(Json.Generated(value));
        return json.RootElement.EnumerateObject().Select(p => p.Name).ToList();
    }

    private static string JsonString<T>(T value) =>
        JsonSerializer.SerializeToElement(value, Json.SnakeCase) is { ValueKind: JsonValueKind.String } s ? s.GetString()! : Convert.ToString(Convert.ToInt64(value, CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)!;

    private static string Invariant(IFormattable value) => value.ToString(null, CultureInfo.InvariantCulture);

    private static void AssertDecimal(JsonElement tagged, decimal expected)
    {
        Assert.Equal("decimal128", tagged.Type());
        Assert.Equal(expected, decimal.Parse(tagged[1].GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture));
    }

    private static void AssertDouble(JsonElement tagged, double expected)
    {
        Assert.Equal("double", tagged.Type());
        Assert.Equal(expected, double.Parse(tagged[1].GetString()!, CultureInfo.InvariantCulture));
    }
}
