using System.Text;
using Npgsql;

namespace Drakkar.Sample;

/// <summary>
/// Turns search requests into runs of <c>rg</c> (or <c>grep</c>), and reports one <see cref="SearchResult"/> per
/// request: always as a JSON line in the filesystem sink <c>results</c>, and to every other configured sink
/// instance (Kafka, PostgreSQL, Redis, HTTP) when <c>drakkar.yaml</c> defines them. MongoDB is left out on purpose: its
/// sink ships in its own package (Drakkar.Sinks.MongoDB), which would more than double this binary.
/// </summary>
[Sink(SinkKind.Filesystem, "results")]
public sealed partial class SearchHandler : DrakkarHandler<SearchRequest>
{
    /// <summary>The JSONL file, relative to the <c>results</c> sink's base_path.</summary>
    public const string ResultsFile = "search-results.jsonl";

    private const int MatchesKept = 5;
    private DrakkarConfig _config = new();

    public override ValueTask<DrakkarConfig> OnStartup(DrakkarConfig config)
    {
        // rg when it is installed, grep otherwise; both print matching lines and exit 1 when nothing matches.
        config.Executor.BinaryPath ??= FindOnPath("rg") ?? FindOnPath("grep") ?? "/usr/bin/grep";
        _config = config;
        return ValueTask.FromResult(config);
    }

    public override async ValueTask OnReady(DrakkarConfig config, NpgsqlDataSource? postgres)
    {
        if (postgres is null) return;
        await using var command = postgres.CreateCommand("""
            CREATE TABLE IF NOT EXISTS search_results (
              request_id text, pattern text, path text, match_count int4, duration_seconds float8, matches jsonb, error text)
            """);
        await command.ExecuteNonQueryAsync();
    }

    public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<SearchRequest>> messages, PendingContext pending)
    {
        var tasks = new List<ExecutorTask>(messages.Count);
        foreach (var message in messages)
        {
            // An undecodable request has no task; OnMessageComplete still reports it.
            if (message.Payload is not { } request) continue;
            tasks.Add(new ExecutorTask(TaskId.New("search"))
            {
                Args = ["-n", "--", request.Pattern, request.Path],
                SourceOffsets = [message.Offset],
            });
        }
        return Tasks(tasks);
    }

    /// <summary>grep and rg exit 1 for "no match": that is an answer, not a failure worth retrying.</summary>
    public override ValueTask<ErrorDecision> OnError(ExecutorTask task, ExecutorError error) =>
        Decide(error.ExitCode is null ? ErrorDecision.Retry : ErrorDecision.Skip);

    public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup<SearchRequest> group)
    {
        var result = Summarize(group);
        var collect = new CollectResult { Files = { FilePayload.Of(ResultsFile, result, sink: "results") } };
        var key = Encoding.UTF8.GetBytes(result.RequestId);
        foreach (var name in _config.Sinks.Kafka.Keys) collect.Kafka.Add(KafkaPayload.Of(result, key, sink: name));
        foreach (var name in _config.Sinks.Postgres.Keys) collect.Postgres.Add(PostgresPayload.Of("search_results", result, sink: name));
        foreach (var name in _config.Sinks.Redis.Keys) collect.Redis.Add(RedisPayload.Of($"search:{result.RequestId}", result, TimeSpan.FromHours(1), sink: name));
        foreach (var name in _config.Sinks.Http.Keys) collect.Http.Add(HttpPayload.Of(result, sink: name));
        return Collect(collect);
    }

    private static SearchResult Summarize(MessageGroup<SearchRequest> group)
    {
        var message = group.Message;
        var request = message.Payload;
        var requestId = request?.RequestId ?? $"offset-{message.Offset}";
        if (request is null)
            return new SearchResult(requestId, "", "", 0, 0, [], message.DecodeError ?? "undecodable request");
        if (group.Results.FirstOrDefault() is { } ran)
        {
            var lines = ran.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            return new SearchResult(requestId, request.Pattern, request.Path, lines.Length, ran.Duration.TotalSeconds, [.. lines.Take(MatchesKept)], null);
        }
        var error = group.Errors.FirstOrDefault();
        return error is { ExitCode: 1, Stderr.Length: 0 }
            ? new SearchResult(requestId, request.Pattern, request.Path, 0, error.Duration.TotalSeconds, [], null)
            : new SearchResult(requestId, request.Pattern, request.Path, 0, 0, [], error?.Message ?? "no task ran");
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);
}
