using Drakkar.Generators.Tests.Infrastructure;

namespace Drakkar.Generators.Tests;

/// <summary>
/// Every Drakkar diagnostic: id, location (line, column and the text it underlines) and message, asserted as the
/// complete list a snippet produces, so a follow-on compiler error would fail the test too.
/// </summary>
public sealed class DiagnosticTests
{
    private static string Handler(string attributes, string body, string payloads = "[Payload] public sealed partial record Summary(string Id, int Count);") => $$"""
        namespace App;

        {{payloads}}

        {{attributes}}
        public sealed partial class SearchHandler : DrakkarHandler
        {
            public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
                ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);

            public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result)
            {
                var summary = new Summary("id", 1);
                var collect = new CollectResult();
                {{body}}
                return ValueTask.FromResult<CollectResult?>(collect);
            }
        }
        """;

    private static void AssertDiagnostics(GeneratorRun run, params string[] expected) =>
        Assert.Equal(string.Join("\n", expected), string.Join("\n", run.Described));

    [Fact]
    public void DRK0001_unnamed_payload_with_two_sinks_of_its_kind_is_reported_at_the_call()
    {
        var run = GeneratorHarness.Run(Handler(
            """[Sink(SinkKind.Kafka, "results")] [Sink(SinkKind.Kafka, "alerts")] [Sink(SinkKind.Postgres, "main")]""",
            """
            collect.Kafka.Add(KafkaPayload.Of(summary, key: null));
                    collect.Kafka.Add(KafkaPayload.Of(summary, sink: ""));
                    collect.Postgres.Add(PostgresPayload.Of("summaries", summary));
            """));

        AssertDiagnostics(run,
            "DRK0001 (15:27) `KafkaPayload.Of(summary, key: null)`: Handler 'SearchHandler' declares 2 kafka sinks ('results', 'alerts'); name the one this payload goes to, for example sink: \"results\"",
            "DRK0001 (16:27) `KafkaPayload.Of(summary, sink: \"\")`: Handler 'SearchHandler' declares 2 kafka sinks ('results', 'alerts'); name the one this payload goes to, for example sink: \"results\"");
    }

    [Fact]
    public void DRK0001_counts_sinks_declared_by_a_base_handler_and_plugin_kinds_separately()
    {
        var source = """
            namespace App;

            [Payload] public sealed partial record Summary(string Id);

            [Sink("s3", "archive")]
            [Sink("s3", "backup")]
            public abstract partial class BaseHandler : DrakkarHandler;

            [Sink("ftp", "drop")]
            public sealed partial class SearchHandler : BaseHandler
            {
                public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
                    ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([CustomPayload.Of("s3", new Summary("a")) is { } ? null! : null!]);

                public CustomPayload Ftp() => CustomPayload.Of("ftp", new Summary("b"));
            }
            """;

        AssertDiagnostics(GeneratorHarness.Run(source),
            "DRK0001 (13:60) `CustomPayload.Of(\"s3\", new Summary(\"a\"))`: Handler 'SearchHandler' declares 2 s3 sinks ('archive', 'backup'); name the one this payload goes to, for example sink: \"archive\"");
    }

    [Fact]
    public void DRK0002_sink_name_the_handler_does_not_declare_is_reported_at_the_name()
    {
        var run = GeneratorHarness.Run(Handler(
            """[Sink(SinkKind.Kafka, "results")] [Sink(SinkKind.Kafka, "alerts")] [Sink("s3", "archive")]""",
            """
            collect.Kafka.Add(KafkaPayload.Of(summary, sink: "alert"));
                    collect.Redis.Add(RedisPayload.Of("k", summary, sink: "cache"));
                    collect.Custom.Add(CustomPayload.Of("s3", summary, "archive"));
                    collect.Custom.Add(CustomPayload.Of("s3", summary, "archives"));
            """));

        AssertDiagnostics(run,
            "DRK0002 (15:58) `\"alert\"`: Handler 'SearchHandler' declares no kafka sink named 'alert' (declared: 'results', 'alerts'); use a declared name or add [Sink(SinkKind.Kafka, \"alert\")] to the handler",
            "DRK0002 (16:63) `\"cache\"`: Handler 'SearchHandler' declares no redis sink named 'cache' (declared: none); use a declared name or add [Sink(SinkKind.Redis, \"cache\")] to the handler",
            "DRK0002 (18:60) `\"archives\"`: Handler 'SearchHandler' declares no s3 sink named 'archives' (declared: 'archive'); use a declared name or add [Sink(\"s3\", \"archives\")] to the handler");
    }

    [Fact]
    public void DRK0003_invalid_table_literal_and_invalid_column_names_are_reported()
    {
        var run = GeneratorHarness.Run(Handler(
            """[Sink(SinkKind.Postgres, "main")]""",
            """
            collect.Postgres.Add(PostgresPayload.Of("search results", summary));
                    collect.Postgres.Add(PostgresPayload.Of("ok_table", new Odd("x")));
                    collect.Postgres.Add(PostgresPayload.Of("1st", summary));
                    collect.Postgres.Add(PostgresPayload.Of("a_table_name_that_is_sixty_four_characters_long_which_is_too_lon", summary));
                    collect.Postgres.Add(PostgresPayload.Of("ok_table", new Long(1)));
            """,
            """
            [Payload] public sealed partial record Summary(string Id, int Count);
            [Payload] public sealed partial record Odd([property: JsonPropertyName("match-count")] string MatchCount);
            [Payload] public sealed partial record Long(int HowManyItemsTheCustomerOrderedAcrossEveryWarehouseInTheLastBillingPeriod);
            """));

        AssertDiagnostics(run,
            "DRK0003 (17:49) `\"search results\"`: 'search results' is not a valid SQL identifier for a PostgreSQL table name; use letters, digits and underscores, not starting with a digit, at most 63 characters",
            "DRK0003 (18:61) `new Odd(\"x\")`: 'match-count' is not a valid SQL identifier for the column of member 'MatchCount' of payload 'Odd'; use letters, digits and underscores, not starting with a digit, at most 63 characters",
            "DRK0003 (19:49) `\"1st\"`: '1st' is not a valid SQL identifier for a PostgreSQL table name; use letters, digits and underscores, not starting with a digit, at most 63 characters",
            "DRK0003 (20:49) `\"a_table_name_that_is_sixty_four_characters_long_which_is_too_lon\"`: 'a_table_name_that_is_sixty_four_characters_long_which_is_too_lon' is not a valid SQL identifier for a PostgreSQL table name; use letters, digits and underscores, not starting with a digit, at most 63 characters",
            "DRK0003 (21:61) `new Long(1)`: 'how_many_items_the_customer_ordered_across_every_warehouse_in_the_last_billing_period' is not a valid SQL identifier for the column of member 'HowManyItemsTheCustomerOrderedAcrossEveryWarehouseInTheLastBillingPeriod' of payload 'Long'; use letters, digits and underscores, not starting with a digit, at most 63 characters");
    }

    [Fact]
    public void DRK0004_payload_type_that_is_not_partial()
    {
        var source = """
            namespace App;

            [Payload] public sealed record Flat(string Id);

            public static class Outer
            {
                [Payload] public sealed partial record Inner(string Id);
            }
            """;

        AssertDiagnostics(GeneratorHarness.Run(source),
            "DRK0004 (3:32) `Flat`: Payload type 'Flat' must be declared partial (and so must every type that contains it) so the generator can implement IPayload<Flat>",
            "DRK0004 (7:44) `Inner`: Payload type 'Inner' must be declared partial (and so must every type that contains it) so the generator can implement IPayload<Inner>");
    }

    [Fact]
    public void DRK0005_unsupported_member_types_are_named_and_uses_of_the_payload_still_compile()
    {
        var run = GeneratorHarness.Run(Handler(
            """[Sink(SinkKind.Kafka, "results")]""",
            """collect.Kafka.Add(KafkaPayload.Of(new Bad("a", null!, [], new())));""",
            """
            [Payload] public sealed partial record Summary(string Id, int Count);
            [Payload] public sealed partial record Bad(string Id, System.IO.Stream Body, HashSet<int> Set, Dictionary<int, string> ByNumber);
            """));

        AssertDiagnostics(run,
            "DRK0005 (4:72) `Body`: Member 'Body' of payload 'Bad' has type 'Stream', which the payload writers cannot handle (a class used as a member must itself be a [Payload] type); use a supported type or mark the member [JsonIgnore]",
            "DRK0005 (4:91) `Set`: Member 'Set' of payload 'Bad' has type 'HashSet<int>', which the payload writers cannot handle (a class used as a member must itself be a [Payload] type); use a supported type or mark the member [JsonIgnore]",
            "DRK0005 (4:120) `ByNumber`: Member 'ByNumber' of payload 'Bad' has type 'Dictionary<int, string>', which the payload writers cannot handle (dictionary keys must be strings); use a supported type or mark the member [JsonIgnore]");
    }

    [Fact]
    public void DRK0010_members_with_one_json_name_are_reported_at_the_second_and_uses_of_the_payload_still_compile()
    {
        var run = GeneratorHarness.Run(Handler(
            """[Sink(SinkKind.Kafka, "results")]""",
            """collect.Kafka.Add(KafkaPayload.Of(new Dup("a", "b", "c", "d", "e")));""",
            """
            [Payload] public sealed partial record Summary(string Id, int Count);
            [Payload] public sealed partial record Dup(string UserId, string User_Id, string ID, string Id, [property: System.Text.Json.Serialization.JsonPropertyName("user_id")] string Other);
            """));

        AssertDiagnostics(run,
            "DRK0010 (4:66) `User_Id`: Member 'User_Id' of payload 'Dup' has the JSON name 'user_id', which member 'UserId' already has; the written object would hold the key twice and its readers would keep one value. Rename one of them or give it [JsonPropertyName]",
            "DRK0010 (4:93) `Id`: Member 'Id' of payload 'Dup' has the JSON name 'id', which member 'ID' already has; the written object would hold the key twice and its readers would keep one value. Rename one of them or give it [JsonPropertyName]",
            "DRK0010 (4:175) `Other`: Member 'Other' of payload 'Dup' has the JSON name 'user_id', which member 'UserId' already has; the written object would hold the key twice and its readers would keep one value. Rename one of them or give it [JsonPropertyName]");
    }

    [Fact]
    public void A_typed_handler_cannot_override_the_untyped_OnMessageComplete_whose_payloads_the_typed_one_would_silently_replace()
    {
        var run = GeneratorHarness.Run("""
            namespace App;

            [Payload] public sealed partial record Job(string Id);

            public sealed partial class JobHandler : DrakkarHandler<Job>
            {
                public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<Job>> messages, PendingContext pending) =>
                    ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);

                public override ValueTask<CollectResult?> OnMessageComplete(MessageGroup group) => ValueTask.FromResult<CollectResult?>(null);
            }
            """);

        AssertDiagnostics(run,
            "CS0239 (10:47) `OnMessageComplete`: 'JobHandler.OnMessageComplete(MessageGroup)': cannot override inherited member 'DrakkarHandler<Job>.OnMessageComplete(MessageGroup)' because it is sealed");
    }

    [Fact]
    public void DRK0011_sinks_no_configuration_can_serve_are_reported_at_the_attribute()
    {
        var run = GeneratorHarness.Run(Handler(
            """[Sink(SinkKind.Kafka, "results")] [Sink(SinkKind.Kafka, "")] [Sink("", "y")] [Sink("kafka", "x")] [Sink("Redis", "z")]""",
            """collect.Kafka.Add(KafkaPayload.Of(summary, sink: "results"));"""));

        AssertDiagnostics(run,
            "DRK0011 (5:36) `Sink(SinkKind.Kafka, \"\")`: Handler 'SearchHandler' declares a sink no configuration can serve: its name is empty; give it the name of its instance in the configuration (sinks.<kind>.<name>)",
            "DRK0011 (5:63) `Sink(\"\", \"y\")`: Handler 'SearchHandler' declares a sink no configuration can serve: its plugin kind is empty; give the kind the plugin registers with SinkRegistry.Register",
            "DRK0011 (5:79) `Sink(\"kafka\", \"x\")`: Handler 'SearchHandler' declares a sink no configuration can serve: its plugin kind 'kafka' is a built-in kind's name, which no plugin can register; use SinkKind for the built-in sink, or the plugin's own kind",
            "DRK0011 (5:100) `Sink(\"Redis\", \"z\")`: Handler 'SearchHandler' declares a sink no configuration can serve: its plugin kind 'Redis' is a built-in kind's name, which no plugin can register; use SinkKind for the built-in sink, or the plugin's own kind");
    }

    [Fact]
    public void A_periodic_interval_that_is_not_a_constant_is_only_the_compilers_error()
    {
        var run = GeneratorHarness.Run("""
            namespace App;

            public sealed partial class TickHandler : DrakkarHandler
            {
                public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
                    ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);

                [Periodic(System.TimeSpan.FromSeconds(5).TotalSeconds)]
                public ValueTask Tick(CancellationToken cancellationToken) => ValueTask.CompletedTask;
            }
            """);

        AssertDiagnostics(run,
            "CS0182 (8:15) `System.TimeSpan.FromSeconds(5).TotalSeconds`: An attribute argument must be a constant expression, typeof expression or array creation expression of an attribute parameter type");
    }

    [Fact]
    public void DRK0006_duplicate_sink_declaration_is_reported_at_the_second_attribute()
    {
        var run = GeneratorHarness.Run(Handler(
            """[Sink(SinkKind.Kafka, "results")] [Sink(SinkKind.Kafka, "results")] [Sink("s3", "a")] [Sink("s3", "a")]""",
            """collect.Kafka.Add(KafkaPayload.Of(summary));"""));

        AssertDiagnostics(run,
            "DRK0006 (5:36) `Sink(SinkKind.Kafka, \"results\")`: Handler 'SearchHandler' declares the kafka sink 'results' more than once; remove the duplicate [Sink]",
            "DRK0006 (5:88) `Sink(\"s3\", \"a\")`: Handler 'SearchHandler' declares the s3 sink 'a' more than once; remove the duplicate [Sink]");
    }

    [Fact]
    public void DRK0007_and_DRK0008_periodic_misuse()
    {
        var source = """
            namespace App;

            public sealed partial class Ticker : DrakkarHandler
            {
                public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
                    ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);

                [Periodic(0)] private ValueTask Zero(CancellationToken cancellationToken) => ValueTask.CompletedTask;
                [Periodic(seconds: -1.5)] private ValueTask Negative(CancellationToken cancellationToken) => ValueTask.CompletedTask;
                [Periodic(1e-9)] private ValueTask Spinning(CancellationToken cancellationToken) => ValueTask.CompletedTask;
                [Periodic(60 * 86400)] private ValueTask TooLong(CancellationToken cancellationToken) => ValueTask.CompletedTask;
                [Periodic(5)] private void NotAsync(CancellationToken cancellationToken) { }
                [Periodic(5)] private static Task Static(CancellationToken cancellationToken) => Task.CompletedTask;
                [Periodic(5)] private Task<int> Generic() => Task.FromResult(1);
                [Periodic(5)] private Task Fine(CancellationToken cancellationToken) => Task.CompletedTask;
            }
            """;

        var run = GeneratorHarness.Run(source);

        AssertDiagnostics(run,
            "DRK0007 (8:6) `Periodic(0)`: Periodic method 'Zero' has an interval of 0 seconds; use between 0.001 and 4294967 seconds (about 49.7 days)",
            "DRK0007 (9:6) `Periodic(seconds: -1.5)`: Periodic method 'Negative' has an interval of -1.5 seconds; use between 0.001 and 4294967 seconds (about 49.7 days)",
            "DRK0007 (10:6) `Periodic(1e-9)`: Periodic method 'Spinning' has an interval of 1E-09 seconds; use between 0.001 and 4294967 seconds (about 49.7 days)",
            "DRK0007 (11:6) `Periodic(60 * 86400)`: Periodic method 'TooLong' has an interval of 5184000 seconds; use between 0.001 and 4294967 seconds (about 49.7 days)",
            "DRK0008 (12:32) `NotAsync`: Periodic method 'NotAsync' must be a non-generic instance method 'ValueTask NotAsync(CancellationToken)' or 'Task NotAsync(CancellationToken)'",
            "DRK0008 (13:39) `Static`: Periodic method 'Static' must be a non-generic instance method 'ValueTask Static(CancellationToken)' or 'Task Static(CancellationToken)'",
            "DRK0008 (14:37) `Generic`: Periodic method 'Generic' must be a non-generic instance method 'ValueTask Generic(CancellationToken)' or 'Task Generic(CancellationToken)'");
        Assert.Contains("\"Fine\"", run.GeneratedSources["App.Ticker.Handler.g.cs"]);
        Assert.DoesNotContain("\"Zero\"", run.GeneratedSources["App.Ticker.Handler.g.cs"]);
    }

    [Fact]
    public void DRK0009_handler_with_sinks_or_periodic_methods_that_is_not_partial()
    {
        var source = """
            namespace App;

            [Sink(SinkKind.Kafka, "results")]
            public sealed class Plain : DrakkarHandler
            {
                public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
                    ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);

                [Periodic(1)] private ValueTask Tick(CancellationToken cancellationToken) => ValueTask.CompletedTask;
            }
            """;

        AssertDiagnostics(GeneratorHarness.Run(source),
            "DRK0009 (4:21) `Plain`: Handler 'Plain' uses [Sink] or [Periodic] and must be declared partial (and so must every type that contains it) so the generator can add its registrations");
    }

    [Fact]
    public void Every_descriptor_is_covered_by_a_test_and_has_a_docs_page()
    {
        var descriptors = typeof(Drakkar.Generators.Diagnostics.DiagnosticDescriptors)
            .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Select(f => (Microsoft.CodeAnalysis.DiagnosticDescriptor)f.GetValue(null)!)
            .ToList();
        var tested = typeof(DiagnosticTests).GetMethods().Select(m => m.Name).ToList();
        var docs = Path.Combine(RepositoryPaths.Root, "docs", "diagnostics");
        var unshipped = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "Drakkar.Generators", "AnalyzerReleases.Unshipped.md"));

        Assert.Equal(11, descriptors.Count);
        foreach (var descriptor in descriptors)
        {
            Assert.Contains(tested, name => name.Contains(descriptor.Id, StringComparison.Ordinal));
            Assert.True(File.Exists(Path.Combine(docs, descriptor.Id + ".md")), $"docs page for {descriptor.Id}");
            Assert.EndsWith("/docs/diagnostics/" + descriptor.Id + ".md", descriptor.HelpLinkUri);
            Assert.Equal(Microsoft.CodeAnalysis.DiagnosticSeverity.Error, descriptor.DefaultSeverity);
            Assert.Contains(descriptor.Id + " |", unshipped);
        }
    }
}
