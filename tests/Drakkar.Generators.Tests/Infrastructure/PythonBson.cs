using System.Diagnostics;
using System.Text.Json;

namespace Drakkar.Generators.Tests.Infrastructure;

/// <summary>
/// Decodes BSON with Debian's python3-bson (an independent implementation) and returns the document as
/// type-tagged JSON: every value is <c>[type, value]</c>, documents are lists of <c>[name, value]</c> pairs in order.
/// </summary>
internal static class PythonBson
{
    // /usr/bin/python3 explicitly: a pyenv python earlier on PATH would not have the Debian package.
    private const string Python = "/usr/bin/python3";

    private const string Script = """
        import sys, json, calendar, uuid, bson
        from bson.int64 import Int64
        from bson.decimal128 import Decimal128
        from bson.codec_options import CodecOptions
        from bson.binary import Binary, UuidRepresentation

        def tag(v):
            if v is None: return ["null", None]
            if isinstance(v, bool): return ["bool", v]
            if isinstance(v, Int64): return ["int64", str(v)]
            if isinstance(v, int): return ["int32", str(v)]
            if isinstance(v, float): return ["double", repr(v)]
            if isinstance(v, str): return ["string", v]
            if isinstance(v, Decimal128): return ["decimal128", str(v)]
            if isinstance(v, uuid.UUID): return ["uuid", str(v)]
            if isinstance(v, Binary): return ["binary", v.subtype, v.hex()]
            if isinstance(v, bytes): return ["binary", 0, v.hex()]
            if hasattr(v, "utcoffset"):
                return ["datetime", calendar.timegm(v.utctimetuple()) * 1000 + v.microsecond // 1000]
            if isinstance(v, dict): return ["document", [[k, tag(x)] for k, x in v.items()]]
            if isinstance(v, list): return ["array", [tag(x) for x in v]]
            raise TypeError(type(v))

        options = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
        document = bson.decode(bytes.fromhex(sys.stdin.read().strip()), codec_options=options)
        print(json.dumps(tag(document)))
        """;

    public static JsonElement Decode(ReadOnlySpan<byte> document)
    {
        var start = new ProcessStartInfo(Python, ["-c", Script])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + Python);
        process.StandardInput.Write(Convert.ToHexString(document));
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException("python3-bson rejected the document: " + error);
        return JsonDocument.Parse(output).RootElement.Clone();
    }
}

/// <summary>Reads the tagged tree <see cref="PythonBson"/> returns.</summary>
internal static class TaggedBson
{
    public static string Type(this JsonElement tagged) => tagged[0].GetString()!;

    public static JsonElement Field(this JsonElement document, string name)
    {
        Assert.Equal("document", document.Type());
        foreach (var pair in document[1].EnumerateArray())
        {
            if (pair[0].GetString() == name) return pair[1];
        }
        throw new Xunit.Sdk.XunitException($"BSON document has no field '{name}'");
    }

    public static IReadOnlyList<string> FieldNames(this JsonElement document) =>
        document[1].EnumerateArray().Select(p => p[0].GetString()!).ToList();

    public static IReadOnlyList<JsonElement> Items(this JsonElement array)
    {
        Assert.Equal("array", array.Type());
        return array[1].EnumerateArray().ToList();
    }

    public static void AssertValue(this JsonElement tagged, string type, string? value)
    {
        Assert.Equal(type, tagged.Type());
        Assert.Equal(value, tagged[1].ValueKind == JsonValueKind.Null ? null : tagged[1].ToString());
    }
}
