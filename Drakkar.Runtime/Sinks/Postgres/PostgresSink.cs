using System.Text;
using Npgsql;

namespace Drakkar.Sinks.Postgres;

/// <summary>
/// Writes each payload as a row of its table (SPEC S9), one column per data member, with typed parameters from the
/// generated row binder. A batch is one round trip in one transaction: every row lands or none does.
/// <list type="bullet">
/// <item><c>insert</c> (default): multi-row <c>INSERT</c> statements sent as one Npgsql batch.</item>
/// <item><c>bulk</c>: binary <c>COPY</c> per table inside one transaction, for large batches.</item>
/// <item><c>upsert</c>: <c>INSERT … ON CONFLICT (on_conflict) DO UPDATE</c>, one statement per row (so a key repeated
/// within a batch updates in order instead of failing); idempotent.</item>
/// </list>
/// </summary>
internal sealed class PostgresSink : ISink
{
    /// <summary>PostgreSQL's limit on parameters in one statement.</summary>
    private const int MaxParameters = 65_535;

    private readonly PostgresSinkConfig _config;
    private readonly string[] _conflictKeys;
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
            // Parse now so a malformed DSN is a configuration error, not a first-delivery surprise.
            _ = new NpgsqlConnectionStringBuilder(config.Dsn);
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
        var builder = new NpgsqlSlimDataSourceBuilder(_config.Dsn);
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
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        if (_config.Mode == PostgresWriteMode.Bulk)
        {
            await CopyAsync(connection, groups, cancellationToken).ConfigureAwait(false);
            return;
        }
        // Without an explicit transaction Npgsql runs a batch's statements in one implicit transaction that ends
        // at the batch's single Sync: all rows or none, in one round trip.
        await using var statements = new NpgsqlBatch(connection);
        foreach (var group in groups)
        {
            if (_config.Mode == PostgresWriteMode.Upsert) AddUpserts(statements, group);
            else AddInserts(statements, group);
        }
        await statements.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
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
                var table = SqlIdentifier.Quote(row.Table, $"the table of a {row.Data.TypeName} payload");
                if (columns.Count == 0) throw new SinkDeliveryException($"{row.Data.TypeName} has no columns to insert into {table}.");
                var quoted = columns.Select(c => SqlIdentifier.Quote(c.Name, $"column of {row.Data.TypeName}")).ToArray();
                group = new TableGroup(row.Table, table, columns, quoted, []);
                groups.Add(group);
            }
            group.Rows.Add(row);
        }
        return groups;
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
        foreach (var key in _conflictKeys)
            if (!group.Columns.Any(c => c.Name == key))
                throw new SinkDeliveryException(
                    $"on_conflict key '{key}' is not a column of {group.Rows[0].Data.TypeName} (columns: {string.Join(", ", group.Columns.Select(c => c.Name))}).");
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

    private static async Task CopyAsync(NpgsqlConnection connection, List<TableGroup> groups, CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        foreach (var group in groups)
        {
            var copy = $"COPY {group.QuotedTable} ({string.Join(", ", group.QuotedColumns)}) FROM STDIN (FORMAT BINARY)";
            await using var importer = await connection.BeginBinaryImportAsync(copy, cancellationToken).ConfigureAwait(false);
            var writer = new CopyRowWriter(importer, group.Columns);
            foreach (var row in group.Rows)
            {
                writer.StartRow();
                row.Data.WriteRow(writer);
                writer.EndRow();
            }
            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
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
