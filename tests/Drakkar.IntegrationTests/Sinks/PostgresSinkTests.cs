using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

[Collection(SinksCollection.Name)]
public sealed class PostgresSinkTests(PostgresServer postgres)
{
    private static int _databases;

    private async Task<(SinkManager Manager, RecordingDlq Dlq, string ConnectionString)> StartAsync(PostgresWriteMode mode = PostgresWriteMode.Insert,
        List<string>? onConflict = null, SinkManagerOptions? options = null, Microsoft.Extensions.Logging.ILoggerFactory? loggers = null,
        bool asOrdinaryRole = false, Action<PostgresSinkConfig>? configure = null)
    {
        Oddly.ColumnName = "value";
        var connectionString = postgres.CreateDatabase($"sinks_{Interlocked.Increment(ref _databases)}_{Environment.ProcessId}");
        await Execute(connectionString, """
            CREATE TABLE search_results (id text, count integer, score double precision, note text, tags jsonb);
            CREATE TABLE audit (id text NOT NULL, count integer, score double precision, note text, tags jsonb);
            CREATE TABLE stamps (key text PRIMARY KEY, sequence bigint NOT NULL, at timestamptz NOT NULL);
            CREATE TABLE "Mixed" (value text);
            """);
        var sinkDsn = connectionString;
        if (asOrdinaryRole)
        {
            // The fixture's user is a superuser, and row-level security does not apply to superusers.
            var role = $"writer_{Interlocked.Increment(ref _databases)}_{Environment.ProcessId}";
            await Execute(connectionString, $"CREATE ROLE {role} LOGIN; GRANT ALL ON SCHEMA public TO {role}; GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};");
            sinkDsn = new NpgsqlConnectionStringBuilder(connectionString) { Username = role }.ConnectionString;
        }
        var config = new DrakkarConfig();
        config.Sinks.Postgres["main"] = new PostgresSinkConfig { Dsn = sinkDsn, Mode = mode, OnConflict = onConflict ?? [] };
        configure?.Invoke(config.Sinks.Postgres["main"]);
        var dlq = new RecordingDlq();
        var masker = new SinkSecretMasker();
        var manager = new SinkManager([new Drakkar.Sinks.Postgres.PostgresSink("main", config.Sinks.Postgres["main"], masker)], dlq,
            options ?? new SinkManagerOptions(), new DrakkarMetrics(), loggers ?? NullLoggerFactory.Instance, masker);
        await manager.StartAsync(default);
        return (manager, dlq, connectionString);
    }

    private static async Task Execute(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<List<object?[]>> Rows(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<object?[]>();
        while (await reader.ReadAsync())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++) row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    private static CollectResult Readings(string table, int count, int start = 0)
    {
        var result = new CollectResult();
        for (var i = start; i < start + count; i++) result.Postgres.Add(PostgresPayload.Of(table, Reading.Sample(i)));
        return result;
    }

    [Fact]
    public async Task Rows_land_with_one_column_per_member_including_nulls_and_jsonb()
    {
        var (manager, dlq, db) = await StartAsync();
        await manager.DeliverAsync(Readings("search_results", 4), Origin(), default);

        Assert.Empty(dlq.Letters);
        var rows = await Rows(db, "SELECT id, count, score, note, tags::text FROM search_results ORDER BY count");
        Assert.Equal(4, rows.Count);
        Assert.Equal(["r-0", 0, 0.0, null, "[\"t0\", \"x\"]"], rows[0]);
        Assert.Equal(["r-2", 2, 1.0, "note 2 ✓", "[\"t2\", \"x\"]"], rows[2]);
        Assert.NotNull(manager.PostgresDataSource);
        await using var lookup = manager.PostgresDataSource!.CreateCommand("SELECT count(*) FROM search_results");
        Assert.Equal(4L, await lookup.ExecuteScalarAsync());
        await manager.CloseAsync();
    }

    /// <summary>
    /// A restart of the database while the worker is idle left the pool's connections without their sessions; the next
    /// batch failed on one with 57P01 ("terminating connection due to administrator command"), which counted as a
    /// failure and opened the circuit of this non-idempotent (insert) sink though the server was up. The server rolls
    /// back a session it ends, so the batch is written again at once on a new connection.
    /// </summary>
    [Fact]
    public async Task Pooled_connections_whose_sessions_the_server_ended_are_replaced_without_a_failure()
    {
        var (manager, dlq, db) = await StartAsync();
        await manager.DeliverAsync(Readings("search_results", 1), Origin(offsets: 1), default);
        var ended = await Rows(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
        Assert.NotEmpty(ended);

        await manager.DeliverAsync(Readings("search_results", 3, start: 1), Origin(offsets: 1), default);

        var stats = manager.StatsOf("postgres", "main");
        await manager.CloseAsync();
        Assert.Equal((0L, 0L, CircuitState.Closed), (stats.Errors, stats.Retries, stats.Circuit));
        Assert.Empty(dlq.Letters);
        Assert.Equal(4L, (await Rows(db, "SELECT count(*) FROM search_results"))[0][0]);
    }

    /// <summary>
    /// A server that takes no writes (25006: a standby after a failover, a read-only database) refused each batch as if
    /// its rows were bad: a newcomer's worker dead-lettered and committed every row while its database was read-only.
    /// It is an outage now: held under on_outage: pause, and written once the server takes writes again.
    /// </summary>
    [Fact]
    public async Task A_server_that_takes_no_writes_holds_the_rows_as_an_outage_and_writes_them_once_it_does()
    {
        var (manager, dlq, db) = await StartAsync(options: new SinkManagerOptions
        {
            Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause, AttemptTimeout = TimeSpan.FromSeconds(5) },
        });
        var database = new NpgsqlConnectionStringBuilder(db).Database;
        await manager.DeliverAsync(Readings("search_results", 1), Origin(offsets: 1), default);
        await Execute(db, $"ALTER DATABASE \"{database}\" SET default_transaction_read_only = on");
        await Rows(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");

        var held = manager.DeliverAsync(Readings("search_results", 3, start: 1), Origin(offsets: 2), default).AsTask();
        await Eventually.True(() => manager.StatsOf("postgres", "main").Errors >= 1, TimeSpan.FromSeconds(30), "the read-only server refused a write");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(held.IsCompleted, "the rows were settled while the server took no writes");
        Assert.Empty(dlq.Letters);

        await Execute(db, $"ALTER DATABASE \"{database}\" RESET default_transaction_read_only");
        await held.WaitAsync(TimeSpan.FromSeconds(30));
        await manager.CloseAsync();

        Assert.Empty(dlq.Letters);
        Assert.Equal(4L, (await Rows(db, "SELECT count(*) FROM search_results"))[0][0]);
    }

    /// <summary>
    /// The intermittent outage-test hang: a held instance's single probe waited on a server that took its connection
    /// and never answered (Npgsql alone gives up only after 30 s of command timeout plus 15 s to open its cancel
    /// request), and every other held group was turned away in silence meanwhile. Each attempt is now bounded by
    /// attempt_timeout_seconds.
    /// </summary>
    [Fact]
    public async Task A_server_that_stops_answering_fails_each_attempt_within_its_timeout_and_every_row_lands_once_it_answers()
    {
        using var logs = new LogCapture();
        var (manager, dlq, db) = await StartAsync(options: new SinkManagerOptions
        {
            Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause, AttemptTimeout = TimeSpan.FromSeconds(1) },
        }, loggers: logs);
        await manager.DeliverAsync(Readings("search_results", 1), Origin(offsets: 1), default);

        Task[] deliveries;
        using (postgres.Freeze())
        {
            // Separate hook calls: one becomes the probe, the others wait their turn behind it.
            deliveries = [.. Enumerable.Range(0, 3).Select(i => manager.DeliverAsync(Readings("search_results", 2, start: 10 + 2 * i), Origin(offsets: 10 + i), default).AsTask())];
            await Eventually.True(() => manager.StatsOf("postgres", "main").Errors >= 2, TimeSpan.FromSeconds(10),
                () => $"two attempts failed while the server hangs\n{logs.Text()}");
            Assert.Contains("(attempt_timeout_seconds)", manager.StatsOf("postgres", "main").LastError);
            await Eventually.True(() => logs.Containing("turned away by the circuit").Any(l => l.Level == Microsoft.Extensions.Logging.LogLevel.Debug),
                TimeSpan.FromSeconds(10), () => $"a held group turned away while another probes, logged\n{logs.Text()}");
            Assert.All(deliveries, d => Assert.False(d.IsCompleted));
            Assert.True(manager.HoldingForOutage);
            Assert.Equal(6, manager.InFlightPayloads);
        }

        await Task.WhenAll(deliveries).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(dlq.Letters);
        // A timed-out INSERT may still commit once the server resumes (its outcome was unknown: at-least-once), so
        // the rows are compared as a set.
        var ids = (await Rows(db, "SELECT DISTINCT id FROM search_results ORDER BY id")).Select(r => (string)r[0]!).ToArray();
        Assert.Equal([.. new[] { 0 }.Concat(Enumerable.Range(10, 6)).Select(i => $"r-{i}").Order(StringComparer.Ordinal)], ids);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_batch_is_one_transaction_all_rows_or_none()
    {
        var (manager, dlq, db) = await StartAsync();
        var result = Readings("search_results", 3);
        // audit.id is NOT NULL; the generated writer for this payload sends null, so the second statement fails.
        result.Postgres.Add(PostgresPayload.Of("audit", new Oddly("id", "x")));
        Oddly.ColumnName = "id";
        result.Postgres.Add(PostgresPayload.Of("audit", new Oddly("id", null!)));

        await manager.DeliverAsync(result, Origin(), default);

        var letter = Assert.Single(dlq.Letters);
        Assert.Contains("table \"audit\", column \"id\": 23502: null value in column \"id\"", letter.Error, StringComparison.Ordinal);
        Assert.Equal(0L, (await Rows(db, "SELECT count(*) FROM search_results"))[0][0]);
        Assert.Equal(0L, (await Rows(db, "SELECT count(*) FROM audit"))[0][0]);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_refused_row_names_its_table_in_one_line_without_the_drivers_redaction_note()
    {
        var (manager, dlq, db) = await StartAsync();
        await Execute(db, "CREATE TABLE narrow (id text, count integer, score double precision, note varchar(3), tags jsonb)");
        // Two tables in one hook call; PostgreSQL's error for a value too long names neither table nor column: the sink
        // finds both (the column from the catalog's declared lengths).
        var result = Readings("search_results", 1);
        result.Postgres.Add(PostgresPayload.Of("narrow", Reading.Sample(1) with { Note = "far too long" }));

        await manager.DeliverAsync(result, Origin(), default);

        var error = Assert.Single(dlq.Letters).Error;
        Assert.Contains("table \"narrow\", column \"note\": 22001: value too long for type character varying(3) (a value of 12 characters; the column holds 3)",
            error, StringComparison.Ordinal);
        Assert.DoesNotContain("Include Error Detail", error, StringComparison.Ordinal);
        Assert.DoesNotContain("\n", error, StringComparison.Ordinal);
        await manager.CloseAsync();
    }

    /// <summary>
    /// The write that replaced connections whose sessions the server had ended held its connection while the refusal's
    /// column was looked up on another: with pool_max 1 the lookup waited out the pool and the column went unnamed.
    /// </summary>
    [Fact]
    public async Task A_value_too_long_right_after_the_servers_sessions_ended_is_named_with_a_pool_of_one()
    {
        var (manager, dlq, db) = await StartAsync(configure: c => (c.PoolMin, c.PoolMax) = (1, 1));
        await Execute(db, "CREATE TABLE narrow (id text, count integer, score double precision, note varchar(3), tags jsonb)");
        await manager.DeliverAsync(Readings("search_results", 1), Origin(offsets: 1), default);
        Assert.NotEmpty(await Rows(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"));
        var result = new CollectResult();
        result.Postgres.Add(PostgresPayload.Of("narrow", Reading.Sample(2) with { Note = "far too long" }));

        await manager.DeliverAsync(result, Origin(offsets: 2), default);

        Assert.Contains("table \"narrow\", column \"note\": 22001", Assert.Single(dlq.Letters).Error, StringComparison.Ordinal);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_value_too_long_is_named_past_an_earlier_value_whose_excess_is_only_trailing_spaces()
    {
        var (manager, dlq, db) = await StartAsync();
        await Execute(db, "CREATE TABLE padded (id varchar(3), count integer, score double precision, note varchar(3), tags jsonb)");
        // PostgreSQL cuts "r-1" and its trailing spaces to varchar(3) without complaint; "far too long" is what it refuses.
        var result = new CollectResult();
        result.Postgres.Add(PostgresPayload.Of("padded", Reading.Sample(1) with { Id = "r-1      ", Note = "far too long" }));

        await manager.DeliverAsync(result, Origin(), default);

        Assert.Contains("table \"padded\", column \"note\": 22001", Assert.Single(dlq.Letters).Error, StringComparison.Ordinal);
        await manager.CloseAsync();
    }

    [Theory]
    [InlineData("bad\"name")]
    [InlineData("results; DROP TABLE stamps")]
    [InlineData("public.search_results")]
    [InlineData("tåble")]
    [InlineData("1results")]
    [InlineData("")]
    public async Task Invalid_table_identifiers_are_refused_with_nothing_executed(string table)
    {
        var (manager, dlq, db) = await StartAsync();
        var result = Readings("search_results", 2);
        result.Postgres.Add(new PostgresPayload("", PayloadData.Of(Reading.Sample(9)), table));

        await manager.DeliverAsync(result, Origin(), default);

        var letter = Assert.Single(dlq.Letters);
        Assert.Contains("Invalid SQL identifier", letter.Error);
        Assert.Contains("nothing was executed", letter.Error);
        Assert.Equal(0L, (await Rows(db, "SELECT count(*) FROM search_results"))[0][0]);
        Assert.Single(await Rows(db, "SELECT 1 FROM pg_tables WHERE tablename = 'stamps'"));
        await manager.CloseAsync();
    }

    [Theory]
    [InlineData("va\"lue")]
    [InlineData("value;--")]
    [InlineData("t.value")]
    [InlineData("välue")]
    public async Task Invalid_column_identifiers_are_refused_with_nothing_executed(string column)
    {
        var (manager, dlq, db) = await StartAsync();
        Oddly.ColumnName = column;
        var result = new CollectResult();
        result.Postgres.Add(PostgresPayload.Of("Mixed", new Oddly(column, "v")));
        await manager.DeliverAsync(result, Origin(), default);
        Assert.Contains("Invalid SQL identifier", Assert.Single(dlq.Letters).Error);
        Assert.Equal(0L, (await Rows(db, "SELECT count(*) FROM \"Mixed\""))[0][0]);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task Identifiers_are_quoted_so_case_is_kept()
    {
        var (manager, dlq, db) = await StartAsync();
        Oddly.ColumnName = "value";
        var result = new CollectResult();
        result.Postgres.Add(PostgresPayload.Of("Mixed", new Oddly("value", "kept")));
        await manager.DeliverAsync(result, Origin(), default);
        Assert.Empty(dlq.Letters);
        Assert.Equal("kept", (await Rows(db, "SELECT value FROM \"Mixed\""))[0][0]);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task Bulk_mode_copies_rows_in_binary()
    {
        var (manager, dlq, db) = await StartAsync(PostgresWriteMode.Bulk);
        // A trigger records the statement that wrote each row: a COPY in binary format, not an INSERT.
        await Execute(db, """
            CREATE TABLE statements (text text);
            CREATE FUNCTION record_statement() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN INSERT INTO statements VALUES (current_query()); RETURN NEW; END $$;
            CREATE TRIGGER record_statement BEFORE INSERT ON search_results FOR EACH ROW EXECUTE FUNCTION record_statement();
            """);
        await manager.DeliverAsync(Readings("search_results", 1000), Origin(), default);
        Assert.Empty(dlq.Letters);
        Assert.Equal(1000L, (await Rows(db, "SELECT count(*) FROM search_results"))[0][0]);
        var statement = Assert.Single(await Rows(db, "SELECT DISTINCT text FROM statements"));
        Assert.Matches(@"^COPY ""search_results"" \(.*\) FROM STDIN \(FORMAT BINARY\)$", (string)statement[0]!);
        Assert.Equal(["r-998", 998, 499.0, "note 998 ✓", "[\"t998\", \"x\"]"],
            (await Rows(db, "SELECT id, count, score, note, tags::text FROM search_results WHERE id = 'r-998'"))[0]);
        await manager.CloseAsync();
    }

    /// <summary>A trigger on <paramref name="table"/> that records the statement writing each row in <c>statements</c>.</summary>
    private static Task RecordStatements(string db, string table) => Execute(db, $"""
        CREATE TABLE IF NOT EXISTS statements (tab text, text text);
        CREATE OR REPLACE FUNCTION record_statement() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN INSERT INTO statements VALUES (TG_TABLE_NAME, current_query()); RETURN NEW; END $$;
        CREATE TRIGGER record_statement BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION record_statement();
        """);

    [Fact]
    public async Task Insert_mode_writes_a_plain_table_with_one_binary_copy()
    {
        var (manager, dlq, db) = await StartAsync();
        await RecordStatements(db, "search_results");
        await manager.DeliverAsync(Readings("search_results", 500), Origin(), default);

        Assert.Empty(dlq.Letters);
        var statement = Assert.Single(await Rows(db, "SELECT DISTINCT text FROM statements"));
        Assert.Matches(@"^COPY ""search_results"" \(""id"", ""count"", ""score"", ""note"", ""tags""\) FROM STDIN \(FORMAT BINARY\)$", (string)statement[0]!);
        Assert.Equal(500L, (await Rows(db, "SELECT count(*) FROM search_results"))[0][0]);
        Assert.Equal(["r-0", 0, 0.0, null, "[\"t0\", \"x\"]"],
            (await Rows(db, "SELECT id, count, score, note, tags::text FROM search_results WHERE id = 'r-0'"))[0]);
        await manager.CloseAsync();
    }

    /// <summary>
    /// COPY skips rules, refuses row security and cannot write into a view; insert mode keeps INSERT there, in the
    /// same transaction as the COPY into a plain table of the same batch.
    /// </summary>
    [Fact]
    public async Task Insert_mode_keeps_insert_into_views_tables_with_rules_and_tables_with_row_security()
    {
        var (manager, dlq, db) = await StartAsync(asOrdinaryRole: true);
        await RecordStatements(db, "search_results");
        await Execute(db, """
            CREATE VIEW audit_view AS SELECT * FROM audit;
            CREATE TABLE ruled (id text, count integer, score double precision, note text, tags jsonb);
            CREATE TABLE rule_log (id text);
            CREATE RULE log_insert AS ON INSERT TO ruled DO ALSO INSERT INTO rule_log VALUES (NEW.id);
            CREATE TABLE secured (id text, count integer, score double precision, note text, tags jsonb);
            ALTER TABLE secured ENABLE ROW LEVEL SECURITY;
            ALTER TABLE secured FORCE ROW LEVEL SECURITY;
            CREATE POLICY everything ON secured USING (true) WITH CHECK (true);
            GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC;
            """);
        var result = Readings("search_results", 3);
        foreach (var table in new[] { "audit_view", "ruled", "secured" })
            result.Postgres.AddRange(Readings(table, 3, start: 10).Postgres);

        await manager.DeliverAsync(result, Origin(), default);

        Assert.Empty(dlq.Letters);
        foreach (var table in new[] { "search_results", "audit", "ruled", "secured", "rule_log" })
            Assert.Equal(3L, (await Rows(db, $"SELECT count(*) FROM {table}"))[0][0]);
        Assert.StartsWith("COPY", (string)Assert.Single(await Rows(db, "SELECT DISTINCT text FROM statements"))[0]!);
        await manager.CloseAsync();
    }

    /// <summary>
    /// A binary COPY sends each value in its own type's format, which a column of another type refuses
    /// (<c>08P01: insufficient data left in message</c> for an <c>int</c> into a <c>bigint</c>); insert mode keeps
    /// INSERT for such a table, which converts the values as SQL does.
    /// </summary>
    [Fact]
    public async Task Insert_mode_inserts_into_columns_whose_types_differ_from_the_payloads_as_an_INSERT_converts_them()
    {
        var (manager, dlq, db) = await StartAsync();
        await Execute(db, "CREATE TABLE widened (id varchar(20), count bigint, score numeric, note text, tags json)");
        await RecordStatements(db, "widened");

        await manager.DeliverAsync(Readings("widened", 3), Origin(), default);

        Assert.Empty(dlq.Letters);
        Assert.StartsWith("INSERT", (string)Assert.Single(await Rows(db, "SELECT DISTINCT text FROM statements WHERE tab = 'widened'"))[0]!);
        Assert.Equal(["r-2", 2L, "[\"t2\", \"x\"]"], (await Rows(db, "SELECT id, count, tags::text FROM widened WHERE id = 'r-2'"))[0]);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task Insert_mode_notices_a_table_replaced_by_a_view_after_its_first_copy()
    {
        var (manager, dlq, db) = await StartAsync();
        await manager.DeliverAsync(Readings("search_results", 2), Origin(), default);
        await Execute(db, """
            ALTER TABLE search_results RENAME TO search_results_base;
            CREATE VIEW search_results AS SELECT * FROM search_results_base;
            """);

        // The cached answer says COPY; the view refuses it, the sink looks again and INSERTs through the view.
        await manager.DeliverAsync(Readings("search_results", 2, start: 2), Origin(offsets: 2), default);

        Assert.Empty(dlq.Letters);
        Assert.Equal(4L, (await Rows(db, "SELECT count(*) FROM search_results_base"))[0][0]);
        await manager.CloseAsync();
    }

    [Fact]
    public async Task Upsert_mode_replaces_rows_by_the_conflict_keys_and_is_idempotent()
    {
        var (manager, dlq, db) = await StartAsync(PostgresWriteMode.Upsert, ["key"]);
        Assert.True(manager.Sinks[0].IsIdempotent);
        var at = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.FromHours(2));
        var result = new CollectResult();
        result.Postgres.Add(PostgresPayload.Of("stamps", new Stamp("a", 1, at)));
        result.Postgres.Add(PostgresPayload.Of("stamps", new Stamp("a", 2, at)));
        result.Postgres.Add(PostgresPayload.Of("stamps", new Stamp("b", 1, at)));

        await manager.DeliverAsync(result, Origin(), default);
        await manager.DeliverAsync(result, Origin(), default);

        Assert.Empty(dlq.Letters);
        var rows = await Rows(db, "SELECT key, sequence, at FROM stamps ORDER BY key");
        Assert.Equal(2, rows.Count);
        Assert.Equal(2L, rows[0][1]);
        Assert.Equal(at.UtcDateTime, ((DateTime)rows[0][2]!).ToUniversalTime());
        await manager.CloseAsync();
    }

    [Fact]
    public void Upsert_mode_needs_valid_conflict_keys()
    {
        var masker = new SinkSecretMasker();
        Assert.Contains("on_conflict must list", Assert.Throws<SinkConfigurationException>(() =>
            new Drakkar.Sinks.Postgres.PostgresSink("main", new PostgresSinkConfig { Dsn = "Host=x", Mode = PostgresWriteMode.Upsert }, masker)).Message);
        Assert.Contains("'key;--' is not a valid column name", Assert.Throws<SinkConfigurationException>(() =>
            new Drakkar.Sinks.Postgres.PostgresSink("main", new PostgresSinkConfig { Dsn = "Host=x", Mode = PostgresWriteMode.Upsert, OnConflict = ["key;--"] }, masker)).Message);
    }

    [Fact]
    public async Task A_libpq_URI_dsn_as_Python_Drakkar_configurations_hold_it_connects_to_the_database_it_names()
    {
        var application = $"uri-{Guid.NewGuid():N}";
        var port = new NpgsqlConnectionStringBuilder(postgres.ConnectionString).Port;
        var sink = new Drakkar.Sinks.Postgres.PostgresSink("main",
            new PostgresSinkConfig { Dsn = $"postgresql://postgres@127.0.0.1:{port}/postgres?application_name={application}&connect_timeout=5&sslmode=disable" },
            new SinkSecretMasker());

        await sink.ConnectAsync(default);

        await using (var connection = await sink.DataSource!.OpenConnectionAsync())
        await using (var command = new NpgsqlCommand("SELECT current_database(), current_user, current_setting('application_name')", connection))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal(("postgres", "postgres", application), (reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }
        await sink.CloseAsync(default);
    }

    [Fact]
    public async Task Pool_max_bounds_the_connections_the_sink_opens_and_pool_min_reaches_the_driver()
    {
        var application = $"pool-{Guid.NewGuid():N}";
        var dsn = new NpgsqlConnectionStringBuilder(postgres.ConnectionString) { ApplicationName = application, Timeout = 1 }.ConnectionString;
        var sink = new Drakkar.Sinks.Postgres.PostgresSink("main", new PostgresSinkConfig { Dsn = dsn, PoolMin = 1, PoolMax = 2 }, new SinkSecretMasker());
        await sink.ConnectAsync(default);
        var pool = sink.DataSource!;

        // Two connections are the most the pool hands out; a third waits for one and gives up after the 1 s timeout.
        await using (var first = await pool.OpenConnectionAsync())
        await using (var second = await pool.OpenConnectionAsync())
        {
            await Assert.ThrowsAnyAsync<NpgsqlException>(async () => await pool.OpenConnectionAsync());
            var open = await Rows(postgres.ConnectionString, $"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application}'");
            Assert.Equal(2L, open[0][0]);
        }
        var settings = new NpgsqlConnectionStringBuilder(pool.ConnectionString);
        Assert.Equal((1, 2), (settings.MinPoolSize, settings.MaxPoolSize));
        await sink.CloseAsync(default);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Pool_min_connections_stay_open_when_the_pool_prunes_idle_ones(int poolMin)
    {
        // Idle connections are pruned after 1 s here (DSN options pass through to Npgsql); pool_min of them survive.
        var application = $"pool-min-{Guid.NewGuid():N}";
        var dsn = new NpgsqlConnectionStringBuilder(postgres.ConnectionString)
        {
            ApplicationName = application, ConnectionIdleLifetime = 1, ConnectionPruningInterval = 1,
        }.ConnectionString;
        var sink = new Drakkar.Sinks.Postgres.PostgresSink("main", new PostgresSinkConfig { Dsn = dsn, PoolMin = poolMin, PoolMax = 5 }, new SinkSecretMasker());
        await sink.ConnectAsync(default);
        var pool = sink.DataSource!;
        var open = async () => (long)(await Rows(postgres.ConnectionString,
            $"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application}'"))[0][0]!;

        var busy = new List<NpgsqlConnection>();
        for (var i = 0; i < 5; i++) busy.Add(await pool.OpenConnectionAsync());
        Assert.Equal(5L, await open());
        foreach (var connection in busy) await connection.DisposeAsync();

        await Eventually.True(() => open().GetAwaiter().GetResult() == poolMin, TimeSpan.FromSeconds(30), $"the pool pruned to pool_min ({poolMin})");
        // And it stays there: pruning never goes below pool_min.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(poolMin, await open());
        await sink.CloseAsync(default);
    }

    [Fact]
    public async Task A_connect_failure_names_the_sink_and_masks_the_password()
    {
        var config = new DrakkarConfig();
        config.Sinks.Postgres["main"] = new PostgresSinkConfig { Dsn = $"Host=127.0.0.1;Port={FreePort.Next()};Username=app;Password=pg-Secret-77;Timeout=2" };
        var manager = SinkManager.Create(config, [], new SinkManagerOptions(), new DrakkarMetrics(), NullLoggerFactory.Instance);
        var error = await Assert.ThrowsAsync<SinkStartupException>(() => manager.StartAsync(default));
        Assert.Contains("sinks.postgres.main", error.Message);
        Assert.DoesNotContain("pg-Secret-77", error.Message);
    }
}
