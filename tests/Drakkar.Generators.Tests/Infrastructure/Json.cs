using System.Buffers;
using System.Text.Json;

namespace Drakkar.Generators.Tests.Infrastructure;

internal static class Json
{
    /// <summary>The System.Text.Json configuration the generated writers must match byte for byte.</summary>
    public static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static byte[] Generated<T>(T value) where T : IPayload<T>
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            T.WriteJson(writer, value);
        }
        return buffer.WrittenSpan.ToArray();
    }

    public static byte[] SystemTextJson<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, SnakeCase);

    public static T Read<T>(byte[] utf8) where T : IPayload<T>
    {
        var reader = new Utf8JsonReader(utf8);
        Assert.True(reader.Read());
        var value = T.ReadJson(ref reader);
        Assert.Equal(JsonTokenType.EndObject, reader.TokenType);
        Assert.False(reader.Read(), "ReadJson must stop on its own EndObject");
        return value;
    }

    public static T Read<T>(string json) where T : IPayload<T> => Read<T>(System.Text.Encoding.UTF8.GetBytes(json));
}
