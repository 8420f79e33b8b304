using Drakkar.Generators.Tests.Infrastructure;

namespace Drakkar.Generators.Tests;

/// <summary>
/// The emitted source for a representative payload and handler, compared with checked-in baselines.
/// Set DRAKKAR_UPDATE_BASELINES=1 to rewrite the ones that differ after an intended change (the run still fails, so
/// the variable cannot hide a difference), review the diff, and run again.
/// </summary>
public sealed class BaselineTests
{
    public const string Source = """
        namespace Search.Worker;

        public enum Outcome { Found, Missing }

        [Payload]
        public sealed partial record SearchSummary(
            string RequestId,
            string? Pattern,
            int MatchCount,
            double DurationSeconds,
            DateTimeOffset FinishedAt,
            Outcome Outcome,
            IReadOnlyList<string> Matches,
            Dictionary<string, long>? Counts,
            Location? Where)
        {
            [JsonPropertyName("ttl")]
            public int? TimeToLive { get; init; } = 60;
        }

        [Payload]
        public sealed partial record Location(string Path, int Line);

        public sealed partial class Outer
        {
            [Sink(SinkKind.Kafka, "results")]
            [Sink(SinkKind.Kafka, "alerts")]
            [Sink(SinkKind.Postgres, "main")]
            [Sink("s3", "archive")]
            internal sealed partial class SearchHandler : DrakkarHandler<SearchSummary>
            {
                public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(
                    IReadOnlyList<SourceMessage<SearchSummary>> messages, PendingContext pending) =>
                    ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);

                [Periodic(30)]
                private ValueTask ReportProgress(CancellationToken cancellationToken) => ValueTask.CompletedTask;

                [Periodic(0.5, OnError = PeriodicOnError.Stop)]
                internal Task Flush(CancellationToken cancellationToken) => Task.CompletedTask;
            }
        }
        """;

    [Theory]
    [InlineData("Search.Worker.SearchSummary.Payload.g.cs")]
    [InlineData("Search.Worker.Outer.SearchHandler.Handler.g.cs")]
    public void Emitted_source_matches_its_baseline(string hintName)
    {
        var run = GeneratorHarness.Run(Source);
        Assert.Empty(run.All);
        var actual = run.GeneratedSources[hintName];

        var path = Path.Combine(RepositoryPaths.TestProject, "Baselines", hintName + ".txt");
        var expected = File.Exists(path) ? File.ReadAllText(path) : null;
        if (expected != actual && Environment.GetEnvironmentVariable("DRAKKAR_UPDATE_BASELINES") == "1")
        {
            // Rewritten, but still a failure: a run with the variable set never passes on output that differs.
            File.WriteAllText(path, actual);
            Assert.Fail($"baseline {path} rewritten with the new output; review the diff, then run again without DRAKKAR_UPDATE_BASELINES");
        }
        Assert.True(expected is not null, $"no baseline at {path}; run with DRAKKAR_UPDATE_BASELINES=1 to create it");
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Emission_is_deterministic()
    {
        var first = GeneratorHarness.Run(Source).GeneratedSources;
        var second = GeneratorHarness.Run(Source).GeneratedSources;

        Assert.Equal(first.OrderBy(p => p.Key), second.OrderBy(p => p.Key));
    }
}
