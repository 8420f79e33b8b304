using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization;
using BenchmarkDotNet.Attributes;
using Drakkar;

namespace Drakkar.Bench.Scenarios;

[Payload]
public sealed partial record SearchResult(
    string RequestId,
    string Pattern,
    int MatchCount,
    double DurationSeconds,
    DateTimeOffset FinishedAt,
    Guid WorkerId,
    IReadOnlyList<string> Matches,
    Dictionary<string, long> Counters,
    MatchLocation? First);

[Payload]
public sealed partial record MatchLocation(string Path, int Line, int Column);

[JsonSerializable(typeof(SearchResult))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
internal sealed partial class BenchJsonContext : JsonSerializerContext;

/// <summary>
/// The generated JSON writer against System.Text.Json source generation (the baseline) for the same payload,
/// both writing into the same reused <see cref="Utf8JsonWriter"/>, as a sink would.
/// </summary>
[MemoryDiagnoser]
public class JsonWriterBenchmarks
{
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private Utf8JsonWriter _writer = null!;
    private SearchResult _value = null!;

    [GlobalSetup]
    public void Setup()
    {
        _value = new SearchResult(
            "req-0001-7f3a", "error|warn(ing)?", 12, 0.0375, new DateTimeOffset(2024, 5, 1, 12, 30, 0, TimeSpan.Zero),
            Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"),
            Enumerable.Range(0, 12).Select(i => $"/var/log/app/service-{i}.log:{i * 17}: warning: disk \"/data\" at {80 + i}%").ToList(),
            new Dictionary<string, long> { ["files"] = 42, ["bytes"] = 1_234_567, ["skipped"] = 3 },
            new MatchLocation("/var/log/app/service-0.log", 1, 17));
        _writer = new Utf8JsonWriter(_buffer);

        // Measuring two writers only makes sense if they write the same thing.
        if (!Generated().SequenceEqual(SystemTextJson()))
        {
            throw new InvalidOperationException("generated JSON differs from System.Text.Json's; fix the generator before benchmarking");
        }
    }

    [Benchmark(Baseline = true)]
    public int SystemTextJsonSourceGen()
    {
        _buffer.ResetWrittenCount();
        _writer.Reset();
        JsonSerializer.Serialize(_writer, _value, BenchJsonContext.Default.SearchResult);
        _writer.Flush();
        return _buffer.WrittenCount;
    }

    [Benchmark]
    public int DrakkarGenerated()
    {
        _buffer.ResetWrittenCount();
        _writer.Reset();
        SearchResult.WriteJson(_writer, _value);
        _writer.Flush();
        return _buffer.WrittenCount;
    }

    private byte[] Generated()
    {
        DrakkarGenerated();
        return _buffer.WrittenSpan.ToArray();
    }

    private byte[] SystemTextJson()
    {
        SystemTextJsonSourceGen();
        return _buffer.WrittenSpan.ToArray();
    }
}
