namespace Drakkar.Generators.Tests.Acceptance;

/// <summary>The worker from shared/API.md, as source, with a marker line a test swaps for a routing mistake.</summary>
internal static class ApiExample
{
    public const string MistakeMarker = "// <mistake>";

    public const string Source = """
        using System.Text;
        using Drakkar;

        namespace Search;

        [Payload] public sealed partial record SearchRequest(string RequestId, string Pattern, string Path);
        [Payload] public sealed partial record SearchResult(string RequestId, string Pattern, int MatchCount,
                                                            double DurationSeconds, IReadOnlyList<string> Matches);
        [Payload] public sealed partial record SearchSummary(string RequestId, string Pattern, int MatchCount);

        [Sink(SinkKind.Kafka, "results")]
        [Sink(SinkKind.Kafka, "alerts")]
        [Sink(SinkKind.Postgres, "main")]
        [Sink(SinkKind.Redis, "cache")]
        public sealed partial class SearchHandler : DrakkarHandler<SearchRequest>
        {
            public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(
                IReadOnlyList<SourceMessage<SearchRequest>> messages, PendingContext pending)
            {
                var tasks = new List<ExecutorTask>(messages.Count);
                foreach (var message in messages)
                {
                    if (message.Payload is not { } request) continue;
                    tasks.Add(new ExecutorTask(TaskId.New("search"))
                    {
                        Args = ["-c", request.Pattern, request.Path],
                        SourceOffsets = [message.Offset],
                        Metadata = { ["request_id"] = request.RequestId, ["pattern"] = request.Pattern },
                    });
                }
                return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>(tasks);
            }

            public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
            {
                var id = result.Task.Metadata["request_id"];
                var count = int.Parse(result.Stdout.Trim());
                var summary = new SearchSummary(id, result.Task.Metadata["pattern"], count);

                var collect = new CollectResult
                {
                    Kafka    = { KafkaPayload.Of(summary, key: Encoding.UTF8.GetBytes(id), sink: "results") },
                    Postgres = { PostgresPayload.Of("search_results", summary) },
                    Redis    = { RedisPayload.Of($"search:{id}", summary, ttl: TimeSpan.FromHours(1)) },
                };
                if (count > 20)
                    collect.Kafka.Add(KafkaPayload.Of(summary, sink: "alerts"));
                // <mistake>
                return ValueTask.FromResult<CollectResult?>(collect);
            }

            public override ValueTask<ErrorDecision> OnError(ExecutorTask task, ExecutorError error)
                => ValueTask.FromResult(error.ExitCode is null ? ErrorDecision.Retry : ErrorDecision.Skip);

            public override ValueTask<DeliveryAction> OnDeliveryError(DeliveryError error)
                => ValueTask.FromResult(error.SinkKind == SinkKind.Redis ? DeliveryAction.Retry : DeliveryAction.Dlq);

            [Periodic(seconds: 30)]
            private ValueTask ReportProgress(CancellationToken cancellationToken) => ValueTask.CompletedTask;
        }
        """;
}
