using System.Collections.Concurrent;
using System.Text;
using Npgsql;

namespace Drakkar.Sinks.Postgres;

/// <summary>
/// Writes each payload as a row of its table (SPEC S9), one column per data member, with typed parameters from the
/// generated row binder. A batch is one transaction: every row lands or none does.
/// <list type="bullet">
/// <item><c>insert</c> (default): plain <c>INSERT</c> semantics. Into an ordinary or partitioned table without rules
/// or row security, where a COPY does exactly what the INSERT would, a binary <c>COPY</c> (a fraction of the client
/// and server work); otherwise multi-row <c>INSERT</c> statements sent as one Npgsql batch.</item>
/// <item><c>bulk</c>: binary <c>COPY</c> per table whatever the table, for large batches.</item>
/// <item><c>upsert</c>: <c>INSERT … ON CONFLICT (on_conflict) DO UPDATE</c>, one statement per row (so a key repeated
/// within a batch updates in order instead of failing); idempotent.</item>
/// </list>
/// </summary>
internal sealed class PostgresSink : ISink
{
    /// <summary>PostgreSQL's limit on parameters in one statement.</summary>
    private const int MaxParameters = 65_535;

    private readonly PostgresSinkConfig _config;
    private readonly string _connectionString;
    private readonly string[] _conflictKeys;
    private readonly ConcurrentDictionary<string, bool> _copyable = new(StringComparer.Ordinal);
    private NpgsqlDataSource? _dataSource;

    internal PostgresSink(string name, PostgresSinkConfig config, SinkSecretMasker masker)
    {
        var path = $"sinks.postgres.{name}";
        if (string.IsNullOrWhiteSpace(config.Dsn)) throw new SinkConfigurationException($"{path}.dsn is required.");
        Name = name;
        _config = config;
        masker.AddCredentialsOf(config.Dsn);
        if (config.Mode == PostgresWriteMode.Upsert && config.OnConflict.Count == 0)
            throw new SinkConfigurationException($"{path}.on_conflict must list the conflict key columns when mode is upsert.");
        foreach (var key in config.OnConflict)
            if (!SqlIdentifier.IsValid(key))
                throw new SinkConfigurationException($"{path}.on_conflict: '{key}' is not a valid column name (^[A-Za-z_][A-Za-z0-9_]*$).");
        _conflictKeys = [.. config.OnConflict];
        try
        {
            // Parsed now so a malformed DSN is a configuration error, not a first-delivery surprise.
            _connectionString = PostgresDsn.ToConnectionString(config.Dsn);
        }
        catch (ArgumentException e)
        {
            throw new SinkConfigurationException($"{path}.dsn is not a valid connection string: {masker.Apply(e.Message)}");
        }
    }

    public string Kind => "postgres";
    public string Name { get; }
    public bool IsIdempotent => _config.Mode == PostgresWriteMode.Upsert;
    public bool IsConnected => _dataSource is not null;

    /// <summary>The pool this sink writes through; handed to <c>OnReady</c> for lookups and migrations.</summary>
    public NpgsqlDataSource? DataSource => _dataSource;

    public async ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        var builder = new NpgsqlSlimDataSourceBuilder(_connectionString);
        builder.EnableArrays();
        builder.EnableJsonTypes();
        builder.ConnectionStringBuilder.MinPoolSize = Math.Max(0, _config.PoolMin);
        builder.ConnectionStringBuilder.MaxPoolSize = Math.Max(1, _config.PoolMax);
        var dataSource = builder.Build();
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var probe = new NpgsqlCommand("SELECT 1", connection);
            await probe.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        _dataSource = dataSource;
    }

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var dataSource = _dataSource ?? throw new SinkTransientException($"postgres sink '{Name}' is not connected");
        var groups = Group(batch.Payloads);
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await WriteGroupsAsync(connection, groups, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (IsTerminatedSession(e))
        {
            // The pool's connections outlived their server sessions (a restart, a failover, pg_terminate_backend): the
            // server ends a session by rolling back its open transaction, so nothing of this attempt was written. Drop
            // the idle connections, which are as stale, and write once more on a new one; a server that is really
            // down fails that open, which is the outage to report. Without this, every routine restart of an idle
            // worker's database counted as a failure and opened the circuit of a non-idempotent sink.
            dataSource.Clear();
            PostgresException? refused = null;
            await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    await WriteGroupsAsync(connection, groups, cancellationToken).ConfigureAwait(false);
                }
                catch (PostgresException again) when (again.SqlState == PostgresErrorCodes.ReadOnlySqlTransaction)
                {
                    throw ReadOnly(dataSource, again);
                }
                catch (PostgresException again) when (!again.IsTransient)
                {
                    refused = again;
                }
            }
            // Reported once the connection is back in the pool: a 22001's column lookup takes one of its own, and with
            // pool_max 1 it would wait out the pool's timeout for this one.
            if (refused is not null) throw await RefusedAsync(dataSource, refused, groups, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ReadOnlySqlTransaction)
        {
            throw ReadOnly(dataSource, e);
        }
        catch (PostgresException e) when (!e.IsTransient)
        {
            throw await RefusedAsync(dataSource, e, groups, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The server takes no writes (25006): a standby after a failover, or a database set read-only. That says nothing
    /// of the payloads, so it is an outage, not a refusal (every row of the stream was dead-lettered and committed).
    /// The pooled sessions are dropped, so the next attempt connects again and can reach the new primary.
    /// </summary>
    private SinkTransientException ReadOnly(NpgsqlDataSource dataSource, PostgresException error)
    {
        dataSource.Clear();
        return new SinkTransientException($"postgres sink '{Name}': the server takes no writes (25006: {error.MessageText}): a standby, or a read-only database", error);
    }

    /// <summary>The server ended the session: administrator command or shutdown (57P01), crash of another backend (57P02).</summary>
    private static bool IsTerminatedSession(PostgresException error) =>
        error.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown;

    private async Task WriteGroupsAsync(NpgsqlConnection connection, List<TableGroup> groups, CancellationToken cancellationToken)
    {
        switch (_config.Mode)
        {
            case PostgresWriteMode.Upsert:
                await using (var statements = new NpgsqlBatch(connection))
                {
                    // One implicit transaction: the batch's statements end at its single Sync, all rows or none.
                    foreach (var group in groups) AddUpserts(statements, group);
                    await statements.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                return;
            case PostgresWriteMode.Bulk:
                await WriteAsync(connection, groups, [], cancellationToken).ConfigureAwait(false);
                return;
            default:
                await InsertModeAsync(connection, groups, cancellationToken).ConfigureAwait(false);
                return;
        }
    }

    /// <summary>
    /// Insert mode: COPY into the tables where it does what the INSERT would (<see cref="CopyableAsync"/>), INSERT
    /// elsewhere. A table that became unfit for COPY since it was looked at (row security turned on, replaced by a
    /// view) fails the whole attempt with nothing written; it is looked at again and the batch written once more.
    /// </summary>
    private async Task InsertModeAsync(NpgsqlConnection connection, List<TableGroup> groups, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var copies = new List<TableGroup>(groups.Count);
            var inserts = new List<TableGroup>();
            foreach (var group in groups)
                (await CopyableAsync(connection, group, cancellationToken).ConfigureAwait(false) ? copies : inserts).Add(group);
            try
            {
                await WriteAsync(connection, copies, inserts, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (PostgresException e) when (attempt == 0 && copies.Count > 0 &&
                e.SqlState is PostgresErrorCodes.FeatureNotSupported or PostgresErrorCodes.WrongObjectType)
            {
                foreach (var group in copies) _copyable.TryRemove(CopyKey(group), out _);
            }
        }
    }

    /// <summary>
    /// The server's refusal as one line that names the table and the column (the server names the column for most refusals;
    /// for a value too long, 22001, it is found from the declared lengths): which table
    /// is not in most PostgreSQL errors (a value too long, a type mismatch), and one sink writes many tables. Npgsql's
    /// note that details were redacted and the statement position are left out: they are the same in every error.
    /// </summary>
    private static async Task<SinkDeliveryException> RefusedAsync(NpgsqlDataSource dataSource, PostgresException error, List<TableGroup> groups,
        CancellationToken cancellationToken)
    {
        var table = RefusedTable(error, groups);
        var tooLong = error.SqlState == PostgresErrorCodes.StringDataRightTruncation && error.ColumnName is not { Length: > 0 }
            ? await TooLongValueAsync(dataSource, table is null ? groups : [.. groups.Where(g => g.QuotedTable == table)], cancellationToken).ConfigureAwait(false)
            : null;
        return Refused(error, groups, table, tooLong);
    }

    /// <summary>The quoted table the server refused a row of, when it can be told (the error, the statement, the COPY, the only table).</summary>
    private static string? RefusedTable(PostgresException error, List<TableGroup> groups) =>
        error.TableName is { Length: > 0 } named ? $"\"{named}\""
            : error.BatchCommand?.CommandText is { } statement
                ? groups.FirstOrDefault(g => statement.StartsWith($"INSERT INTO {g.QuotedTable} ", StringComparison.Ordinal))?.QuotedTable
            : error.Data[CopyTableKey] as string ?? (groups.Count == 1 ? groups[0].QuotedTable : null);

    /// <summary>
    /// For a value too long (22001), whose error names no column: the first value of <paramref name="groups"/>' rows that
    /// is longer than its column's declared length (<c>varchar(n)</c>, <c>char(n)</c>), found by reading the lengths from
    /// the catalog, as (column, its length, the value's). Null when it cannot be told (the lookup failed, or no value is
    /// over: a length the server counts differently).
    /// </summary>
    private static async Task<(string Column, int Limit, int Length)?> TooLongValueAsync(NpgsqlDataSource dataSource, List<TableGroup> groups,
        CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            foreach (var group in groups)
            {
                var limits = new Dictionary<string, int>(StringComparer.Ordinal);
                // The table the INSERT wrote to, resolved by the server as the statement's name was (search_path, a
                // temporary table first), and its varchar(n) and char(n) columns' n (typmod n + 4).
                await using (var lookup = new NpgsqlCommand(
                    "SELECT attname, atttypmod - 4 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 " +
                    "AND NOT attisdropped AND atttypmod > 4 AND atttypid IN ('varchar'::regtype, 'bpchar'::regtype)", connection))
                {
                    lookup.Parameters.Add(new NpgsqlParameter<string> { TypedValue = group.QuotedTable });
                    await using var reader = await lookup.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) limits.TryAdd(reader.GetString(0), reader.GetInt32(1));
                }
                var lengths = new TextLengths(group.Columns.Count);
                foreach (var row in group.Rows)
                {
                    lengths.NextRow();
                    row.Data.WriteRow(lengths);
                    for (var i = 0; i < group.Columns.Count; i++)
                        if (limits.TryGetValue(group.Columns[i].Name, out var limit) && lengths.Of(i) > limit) return (group.Columns[i].Name, limit, lengths.Of(i));
                }
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or OperationCanceledException)
        {
            // The refusal is reported either way; the column is a help, not a need.
        }
        return null;
    }

    /// <summary>
    /// The length in characters (as PostgreSQL counts them: code points) of each text value of a row, without its trailing
    /// spaces: PostgreSQL cuts a value whose excess is all spaces to the column's length instead of refusing it.
    /// </summary>
    private sealed class TextLengths(int columns) : IRowWriter
    {
        private readonly int[] _lengths = new int[columns];
        private int _column;

        public void NextRow()
        {
            Array.Clear(_lengths);
            _column = 0;
        }

        public int Of(int column) => _lengths[column];

        public void Write<T>(T? value)
        {
            if (value is string text && _column < _lengths.Length)
            {
                var runes = 0;
                foreach (var _ in text.AsSpan().TrimEnd(' ').EnumerateRunes()) runes++;
                _lengths[_column] = runes;
            }
            _column++;
        }

        public void WriteJson<TState>(TState state, Action<System.Text.Json.Utf8JsonWriter, TState> write) => _column++;
    }

    private static SinkDeliveryException Refused(PostgresException error, List<TableGroup> groups, string? table, (string Column, int Limit, int Length)? tooLong)
    {
        var text = new StringBuilder();
        text.Append(table is null ? $"tables {string.Join(", ", groups.Select(g => g.QuotedTable).Distinct())}" : $"table {table}");
        if (error.ColumnName is { Length: > 0 } column) text.Append(", column \"").Append(column).Append('"');
        else if (tooLong is { } found) text.Append(", column \"").Append(found.Column).Append('"');
        if (error.ConstraintName is { Length: > 0 } constraint) text.Append(", constraint \"").Append(constraint).Append('"');
        text.Append(": ").Append(error.SqlState).Append(": ").Append(error.MessageText);
        if (error.Detail is { Length: > 0 } detail && !detail.StartsWith("Detail redacted", StringComparison.Ordinal))
            text.Append(" (").Append(detail.ReplaceLineEndings(" ")).Append(')');
        if (error.Hint is { Length: > 0 } hint) text.Append("; hint: ").Append(hint.ReplaceLineEndings(" "));
        if (tooLong is { } over) text.Append(" (a value of ").Append(over.Length).Append(" characters; the column holds ").Append(over.Limit).Append(')');
        // Without the PostgresException as its inner exception: its message, redaction note included, would be added
        // to every DLQ record and log line again.
        return new SinkDeliveryException(text.ToString());
    }

    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _dataSource, null) is { } dataSource)
            await dataSource.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Payloads grouped by table and column set (in first-seen order), with every identifier validated before anything runs.</summary>
    private static List<TableGroup> Group(IReadOnlyList<SinkPayload> payloads)
    {
        var groups = new List<TableGroup>();
        foreach (var payload in payloads)
        {
            var row = (PostgresPayload)payload;
            var columns = row.Data.Columns;
            TableGroup? group = null;
            foreach (var g in groups)
                if (g.Table == row.Table && (ReferenceEquals(g.Columns, columns) || g.Columns.SequenceEqual(columns))) { group = g; break; }
            if (group is null)
            {
                var (table, quoted) = QuotedIdentifiers(row);
                group = new TableGroup(row.Table, table, columns, quoted, []);
                groups.Add(group);
            }
            group.Rows.Add(row);
        }
        return groups;
    }

    /// <summary>The payload's table and columns, quoted; throws naming what is wrong (an invalid identifier, no columns).</summary>
    internal static (string Table, string[] Columns) QuotedIdentifiers(PostgresPayload row)
    {
        var table = SqlIdentifier.Quote(row.Table, $"the table of a {row.Data.TypeName} payload");
        if (row.Data.Columns.Count == 0) throw new SinkDeliveryException($"{row.Data.TypeName} has no columns to insert into {table}.");
        return (table, row.Data.Columns.Select(c => SqlIdentifier.Quote(c.Name, $"column of {row.Data.TypeName}")).ToArray());
    }

    /// <summary>Throws unless every <c>on_conflict</c> key is a column of the payload's type (upsert mode).</summary>
    internal static void CheckConflictKeys(IReadOnlyList<string> conflictKeys, PostgresPayload row)
    {
        foreach (var key in conflictKeys)
            if (!row.Data.Columns.Any(c => c.Name == key))
                throw new SinkDeliveryException(
                    $"on_conflict key '{key}' is not a column of {row.Data.TypeName} (columns: {string.Join(", ", row.Data.Columns.Select(c => c.Name))}).");
    }

    private static void AddInserts(NpgsqlBatch statements, TableGroup group)
    {
        var rowsPerStatement = Math.Max(1, MaxParameters / group.Columns.Count);
        for (var start = 0; start < group.Rows.Count; start += rowsPerStatement)
        {
            var count = Math.Min(rowsPerStatement, group.Rows.Count - start);
            var sql = new StringBuilder(64 + count * group.Columns.Count * 5);
            sql.Append("INSERT INTO ").Append(group.QuotedTable).Append(" (").AppendJoin(", ", group.QuotedColumns).Append(") VALUES ");
            AppendValues(sql, count, group.Columns.Count);
            var command = new NpgsqlBatchCommand(sql.ToString());
            var writer = new ParameterRowWriter(command.Parameters, group.Columns);
            for (var i = start; i < start + count; i++)
            {
                writer.NextRow();
                group.Rows[i].Data.WriteRow(writer);
                writer.EndRow();
            }
            statements.BatchCommands.Add(command);
        }
    }

    private void AddUpserts(NpgsqlBatch statements, TableGroup group)
    {
        CheckConflictKeys(_conflictKeys, group.Rows[0]);
        var sql = new StringBuilder(128);
        sql.Append("INSERT INTO ").Append(group.QuotedTable).Append(" (").AppendJoin(", ", group.QuotedColumns).Append(") VALUES ");
        AppendValues(sql, 1, group.Columns.Count);
        sql.Append(" ON CONFLICT (").AppendJoin(", ", _conflictKeys.Select(k => $"\"{k}\"")).Append(") DO ");
        var updates = group.QuotedColumns.Where((_, i) => !_conflictKeys.Contains(group.Columns[i].Name)).Select(c => $"{c} = EXCLUDED.{c}").ToArray();
        if (updates.Length == 0) sql.Append("NOTHING");
        else sql.Append("UPDATE SET ").AppendJoin(", ", updates);
        var text = sql.ToString();
        foreach (var row in group.Rows)
        {
            var command = new NpgsqlBatchCommand(text);
            var writer = new ParameterRowWriter(command.Parameters, group.Columns);
            writer.NextRow();
            row.Data.WriteRow(writer);
            writer.EndRow();
            statements.BatchCommands.Add(command);
        }
    }

    /// <summary>
    /// Whether a plain <c>INSERT</c> into the group's table does exactly what a <c>COPY</c> does: an ordinary or
    /// partitioned table without rules (COPY ignores them; views have one) and without row security (COPY refuses
    /// it), whose columns have exactly the types the payload's values are written as. A binary COPY sends each value
    /// in its own type's format, so an <c>int</c> member into a <c>bigint</c> column fails
    /// (<c>08P01: insufficient data left in message</c>), where the INSERT converts it as SQL does; so does any other
    /// column whose type differs (text into <c>varchar</c> excepted: the same format, and its length is still checked).
    /// Looked up once per table and payload shape; a table that does not resolve (yet) is left to the INSERT and its
    /// error.
    /// </summary>
    private async ValueTask<bool> CopyableAsync(NpgsqlConnection connection, TableGroup group, CancellationToken cancellationToken)
    {
        var key = CopyKey(group);
        if (_copyable.TryGetValue(key, out var copyable)) return copyable;
        await using var lookup = new NpgsqlCommand(
            """
            SELECT c.relkind IN ('r', 'p') AND NOT c.relhasrules AND NOT c.relrowsecurity
                AND (SELECT count(*) FROM unnest($2::text[], $3::text[]) AS w(name, type)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = w.name AND a.attnum > 0 AND NOT a.attisdropped
                     WHERE a.atttypid = pg_catalog.to_regtype(w.type)::oid
                        OR (w.type = 'text' AND a.atttypid = 'pg_catalog.varchar'::pg_catalog.regtype)) = pg_catalog.cardinality($2::text[])
            FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)
            """,
            connection);
        lookup.Parameters.Add(new NpgsqlParameter<string> { TypedValue = group.QuotedTable });
        lookup.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. group.Columns.Select(c => c.Name)] });
        lookup.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. group.Columns.Select(c => c.DataTypeName)] });
        if (await lookup.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not bool answer) return false;
        _copyable[key] = answer;
        return answer;
    }

    /// <summary>What <see cref="CopyableAsync"/> decides for: the table and the columns written, with their types.</summary>
    private static string CopyKey(TableGroup group) =>
        group.Table + "\n" + string.Join(",", group.Columns.Select(c => c.Name + " " + c.DataTypeName));

    /// <summary>
    /// Binary COPY for <paramref name="copies"/>, one multi-row INSERT batch for <paramref name="inserts"/>: one
    /// transaction for all of it. A lone COPY is atomic by itself, so it runs without BEGIN and COMMIT round trips.
    /// </summary>
    private static async Task WriteAsync(NpgsqlConnection connection, List<TableGroup> copies, List<TableGroup> inserts, CancellationToken cancellationToken)
    {
        if (copies.Count == 1 && inserts.Count == 0)
        {
            await CopyAsync(connection, copies[0], cancellationToken).ConfigureAwait(false);
            return;
        }
        if (copies.Count == 0)
        {
            await InsertAsync(connection, inserts, cancellationToken).ConfigureAwait(false);
            return;
        }
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        foreach (var group in copies) await CopyAsync(connection, group, cancellationToken).ConfigureAwait(false);
        if (inserts.Count > 0) await InsertAsync(connection, inserts, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task CopyAsync(NpgsqlConnection connection, TableGroup group, CancellationToken cancellationToken)
    {
        var copy = $"COPY {group.QuotedTable} ({string.Join(", ", group.QuotedColumns)}) FROM STDIN (FORMAT BINARY)";
        await using var importer = await connection.BeginBinaryImportAsync(copy, cancellationToken).ConfigureAwait(false);
        var writer = new CopyRowWriter(importer, group.Columns);
        try
        {
            foreach (var row in group.Rows)
            {
                writer.StartRow();
                row.Data.WriteRow(writer);
                writer.EndRow();
            }
            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e)
        {
            // A COPY's error does not say which table; several are copied in one transaction (Refused).
            e.Data[CopyTableKey] = group.QuotedTable;
            throw;
        }
    }

    private const string CopyTableKey = "drakkar.copy_table";

    /// <summary>
    /// Multi-row INSERT statements as one Npgsql batch. Outside an explicit transaction Npgsql runs a batch's
    /// statements in one implicit transaction that ends at its single Sync: all rows or none, in one round trip.
    /// </summary>
    private static async Task InsertAsync(NpgsqlConnection connection, List<TableGroup> groups, CancellationToken cancellationToken)
    {
        await using var statements = new NpgsqlBatch(connection);
        foreach (var group in groups) AddInserts(statements, group);
        await statements.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static void AppendValues(StringBuilder sql, int rows, int columns)
    {
        var parameter = 1;
        for (var r = 0; r < rows; r++)
        {
            if (r > 0) sql.Append(", ");
            sql.Append('(');
            for (var c = 0; c < columns; c++)
            {
                if (c > 0) sql.Append(", ");
                sql.Append('$').Append(parameter++);
            }
            sql.Append(')');
        }
    }

    private sealed record TableGroup(string Table, string QuotedTable, IReadOnlyList<PayloadColumn> Columns, string[] QuotedColumns, List<PostgresPayload> Rows);
}
