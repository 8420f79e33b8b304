using System.Text;
using System.Text.Json;

namespace Drakkar;

/// <summary>
/// Where a payload goes, beyond its data: a Redis key and ttl, a file path, a table, a collection, a Kafka key. Written
/// as members of a JSON object by the probe report (with the Redis instance's key prefix) and by DLQ records (as the
/// handler gave them); nothing for HTTP and plugin payloads.
/// </summary>
internal static class PayloadTarget
{
    /// <summary>Texts longer than this (a computed key or path) are cut: the records that carry them are about the data.</summary>
    internal const int MaxChars = 1024;

    public static void WriteMembers(Utf8JsonWriter json, SinkPayload payload, string redisKeyPrefix = "")
    {
        switch (payload)
        {
            case KafkaPayload kafka:
                if (kafka.Key is null) json.WriteNull("key");
                else if (System.Text.Unicode.Utf8.IsValid(kafka.Key)) json.WriteString("key", Cut(Encoding.UTF8.GetString(kafka.Key)));
                else json.WriteBase64String("key_base64", kafka.Key.AsSpan(0, Math.Min(kafka.Key.Length, MaxChars)));
                break;
            case PostgresPayload postgres:
                json.WriteString("table", Cut(postgres.Table));
                break;
            case MongoPayload mongo:
                json.WriteString("collection", Cut(mongo.Collection));
                break;
            case RedisPayload redis:
                json.WriteString("key", Cut(redisKeyPrefix + redis.Key));
                if (redis.Ttl is { } ttl) json.WriteNumber("ttl_seconds", ttl.TotalSeconds);
                else json.WriteNull("ttl_seconds");
                break;
            case FilePayload file:
                json.WriteString("path", Cut(file.Path));
                break;
        }
    }

    private static string Cut(string text) => text.Length <= MaxChars ? text : text[..MaxChars] + "…";
}
