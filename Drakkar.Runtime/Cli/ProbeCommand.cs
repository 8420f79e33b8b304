using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Drakkar.Probe;
using Microsoft.Extensions.Logging;

namespace Drakkar.Cli;

/// <summary>
/// <c>probe</c>: runs given messages (read from Kafka by topic/partition/offset without joining the group, or from a
/// JSON file) through the handler and the executor and prints, per sink instance, the payloads each sink would
/// receive. Nothing is delivered, dead-lettered or committed.
/// </summary>
internal static class ProbeCommand
{
    public const string Name = "probe";

    public static readonly (string[] ValueOptions, string[] Flags) Options =
        (["--config", "--topic", "--partition", "--offset", "--count", "--input"], []);

    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitUsage = 2;

    public static async Task<int> RunAsync(CommandLine line, DrakkarHandlerBase handler, DrakkarConfig config, Hosting.WorkerParts parts,
        ILoggerFactory loggers, Stream stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        var input = line.Value("--input");
        var partition = line.Integer("--partition");
        var offset = line.Long("--offset");
        var count = line.Integer("--count", 1, minimum: 1);
        // Only when one was left out: a malformed one is already reported as such.
        if (input is null && (line.Value("--partition") is null || line.Value("--offset") is null)) line.Errors.Add("give --input FILE, or --partition P and --offset O");
        if (input is not null && (partition is not null || offset is not null || line.Value("--topic") is not null))
            line.Errors.Add("--input cannot be combined with --topic, --partition or --offset");
        if (input is null && string.Equals(config.Kafka.Brokers.Trim(), Hosting.WorkerHost.EmbeddedBrokers, StringComparison.OrdinalIgnoreCase))
            line.Errors.Add("kafka.brokers is 'embedded': that broker lives inside a running worker and holds nothing here; give --input FILE, " +
                "or the running worker's broker as DK_KAFKA__BROKERS=HOST:PORT (its log line 'Embedded Kafka broker at HOST:PORT')");
        if (line.Errors.Count > 0)
        {
            foreach (var error in line.Errors) stderr.WriteLine($"error: {error}");
            return ExitUsage;
        }

        config = await handler.OnStartup(config).ConfigureAwait(false);
        IReadOnlyList<ProbeInput> messages;
        try
        {
            messages = input is not null
                ? ReadFile(input, config.Kafka.SourceTopic)
                : MessageProbe.ReadKafka(config, line.Value("--topic") ?? config.Kafka.SourceTopic, partition!.Value, offset!.Value, count!.Value, cancellationToken);
        }
        catch (Exception e) when (input is not null && e is IOException or JsonException or InvalidDataException or UnauthorizedAccessException
            or InvalidOperationException or FormatException)
        {
            stderr.WriteLine($"error: {input}: {e.Message}");
            return ExitUsage;
        }
        catch (SourceReadException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitFailure;
        }
        catch (KafkaException e)
        {
            stderr.WriteLine($"error: reading the messages failed: {SecretMasker.Mask(e.Message)}");
            return ExitFailure;
        }
        if (messages.Count == 0)
        {
            // The position exists (the reader checked the watermarks); nothing arrived within its read time.
            stderr.WriteLine("error: no record at that position arrived within the read time; try again");
            return ExitFailure;
        }

        await handler.OnReady(config, null).ConfigureAwait(false);
        var report = await MessageProbe.RunWithOwnExecutorAsync(handler, config, messages, parts.Executor, loggers, cancellationToken).ConfigureAwait(false);
        report.WriteJson(stdout, config.Sinks);
        await stdout.WriteAsync("\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        await stdout.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (report.Unfinished == 0) return ExitOk;
        stderr.WriteLine($"error: {report.Unfinished} message(s) did not finish in time; their payloads are missing from the report");
        return ExitFailure;
    }

    /// <summary>
    /// Reads a messages file: a JSON array of objects with <c>value</c> (a string, or any other JSON written as its
    /// compact text), and optional <c>key</c> (string or null), <c>headers</c> (object of strings), <c>partition</c>
    /// (default 0), <c>offset</c> (default: the entry's index) and <c>topic</c> (default <c>kafka.source_topic</c>).
    /// </summary>
    internal static List<ProbeInput> ReadFile(string path, string sourceTopic)
    {
        // The runtime's own messages for these name neither case plainly ("Access to the path is denied" for a directory).
        if (Directory.Exists(path)) throw new InvalidDataException("is a directory, not a JSON file of messages");
        if (!File.Exists(path)) throw new InvalidDataException("no such file");
        var bytes = File.ReadAllBytes(path);
        // Editors on Windows start UTF-8 files with a byte order mark, which the JSON parser refuses.
        var json = bytes.AsMemory(bytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0);
        using var document = JsonDocument.Parse(json);
        if (document.RootElement.ValueKind != JsonValueKind.Array) throw new InvalidDataException("must hold a JSON array of messages");
        var messages = new List<ProbeInput>();
        var lastOffsets = new Dictionary<int, long>();
        var index = 0;
        foreach (var item in document.RootElement.EnumerateArray())
        {
            var at = $"message [{index}]";
            if (item.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{at} must be an object");
            // A missing value is most likely a misspelt key: "value": null says a message without one.
            if (!item.TryGetProperty("value", out var v))
                throw new InvalidDataException($"{at} has no \"value\" (members: {string.Join(", ", item.EnumerateObject().Select(m => m.Name))}); " +
                    "write \"value\": null for a message without one");
            var value = v.ValueKind switch
            {
                JsonValueKind.String => Encoding.UTF8.GetBytes(v.GetString()!),
                JsonValueKind.Null => null,
                _ => Encoding.UTF8.GetBytes(v.GetRawText()),
            };
            var key = item.TryGetProperty("key", out var k) && k.ValueKind != JsonValueKind.Null
                ? Encoding.UTF8.GetBytes(k.ValueKind == JsonValueKind.String ? k.GetString()! : throw new InvalidDataException($"{at}: key must be a string or null"))
                : null;
            var headers = new List<KeyValuePair<string, byte[]>>();
            if (item.TryGetProperty("headers", out var h) && h.ValueKind == JsonValueKind.Object)
                foreach (var header in h.EnumerateObject())
                    headers.Add(KeyValuePair.Create(header.Name, Encoding.UTF8.GetBytes(header.Value.ValueKind == JsonValueKind.String
                        ? header.Value.GetString()!
                        : throw new InvalidDataException($"{at}: header '{header.Name}' must be a string"))));
            var partition = item.TryGetProperty("partition", out var p) ? (int)WholeNumber(p, $"{at}: partition", int.MaxValue) : 0;
            var offset = item.TryGetProperty("offset", out var o) ? WholeNumber(o, $"{at}: offset", long.MaxValue) : index;
            // The pipeline tracks each partition's offsets in the order they arrive, as a consumer sees them.
            if (lastOffsets.TryGetValue(partition, out var previous) && offset <= previous)
                throw new InvalidDataException($"{at}: offset {offset} must be greater than the offset {previous} before it in partition {partition} " +
                    "(a partition's messages are listed in offset order)");
            lastOffsets[partition] = offset;
            var topic = item.TryGetProperty("topic", out var t) ? t.GetString() ?? sourceTopic : sourceTopic;
            messages.Add(new ProbeInput(topic, partition, offset, key, value, DateTimeOffset.UtcNow, headers));
            index++;
        }
        if (messages.Count == 0) throw new InvalidDataException("holds no messages (an empty array)");
        return messages;
    }

    /// <summary>A member that must be a whole number from 0 to <paramref name="maximum"/>; the error names it.</summary>
    private static long WholeNumber(JsonElement element, string what, long maximum) =>
        element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out var number) && number >= 0 && number <= maximum
            ? number
            : throw new InvalidDataException($"{what} must be a whole number from 0 to {maximum} (got {element.GetRawText()})");
}
