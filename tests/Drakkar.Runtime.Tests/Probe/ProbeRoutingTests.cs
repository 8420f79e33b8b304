using Drakkar.Probe;
using Drakkar.Runtime.Tests.Pipeline;
using Drakkar.Runtime.Tests.Sinks;

namespace Drakkar.Runtime.Tests.Probe;

/// <summary>The probe names the refusals the sinks themselves would make, with the sinks' own words.</summary>
public sealed class ProbeRoutingTests
{
    private static readonly Note Data = new("x");

    private static ProbeRouting Routing(PostgresWriteMode mode = PostgresWriteMode.Insert, params string[] conflictKeys)
    {
        var sinks = new SinksConfig();
        sinks.Postgres["db"] = new PostgresSinkConfig { Dsn = "postgresql://localhost/db", Mode = mode, OnConflict = [.. conflictKeys] };
        return new ProbeRouting(sinks);
    }

    [Fact]
    public void A_valid_row_document_and_key_pass()
    {
        var routing = Routing();

        Assert.Null(routing.Refusal(PostgresPayload.Of("notes", Data), "db"));
        Assert.Null(routing.Refusal(MongoPayload.Of("notes", Data), "docs"));
        Assert.Null(routing.Refusal(RedisPayload.Of("note:1", Data), "cache"));
    }

    [Fact]
    public void An_invalid_table_name_is_refused_as_the_postgres_sink_refuses_it()
    {
        // Built from data at run time (a constant is a compile-time error, DRK0003).
        var table = string.Join(' ', "notes;", "drop", "table", "x");

        var refusal = Routing().Refusal(PostgresPayload.Of(table, Data), "db");

        Assert.StartsWith("Invalid SQL identifier for the table of a Note payload: 'notes; drop table x'", refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void An_upsert_key_the_type_lacks_is_refused_only_in_upsert_mode()
    {
        Assert.Null(Routing().Refusal(PostgresPayload.Of("notes", Data), "db"));

        var refusal = Routing(PostgresWriteMode.Upsert, "id").Refusal(PostgresPayload.Of("notes", Data), "db");

        Assert.StartsWith("on_conflict key 'id' is not a column of Note (columns: ", refusal, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("$cmd")]
    [InlineData("system.users")]
    [InlineData("")]
    public void A_collection_name_mongodb_reserves_is_refused(string collection)
    {
        Assert.Equal($"'{collection}' is not a valid MongoDB collection name (a Note payload).", Routing().Refusal(MongoPayload.Of(collection, Data), "docs"));
    }

    [Fact]
    public void A_blank_redis_key_is_refused()
    {
        Assert.StartsWith("Note has a blank Redis key", Routing().Refusal(RedisPayload.Of("  ", Data), "cache"), StringComparison.Ordinal);
    }

    [Fact]
    public void A_NaN_is_a_value_for_postgres_and_mongodb_and_has_no_form_in_the_json_sinks()
    {
        static string? Problem(SinkPayload payload) => new ProbedPayload("on_task_complete", 0, [0], payload).FormProblem;
        var nan = new Measure(double.NaN);

        // PostgreSQL binds a double as a typed parameter and MongoDB writes a BSON double: both take NaN.
        Assert.Null(Problem(PostgresPayload.Of("measures", nan)));
        Assert.Null(Problem(MongoPayload.Of("measures", nan)));
        Assert.StartsWith("cannot be written as JSON, so the sink would dead-letter it: ", Problem(RedisPayload.Of("m", nan)), StringComparison.Ordinal);
        Assert.StartsWith("cannot be written as JSON, so the sink would dead-letter it: ", Problem(KafkaPayload.Of(nan)), StringComparison.Ordinal);
        // A nested member is a jsonb column, written as JSON.
        Assert.StartsWith("cannot be written as a PostgreSQL row, so the sink would dead-letter it: ",
            Problem(PostgresPayload.Of("measures", new Labelled("m", nan))), StringComparison.Ordinal);
    }
}

/// <summary>A row whose nested member is a jsonb column.</summary>
[Payload]
public sealed partial record Labelled(string Label, Measure Measure);
