using System.Buffers;
using System.Text.Json;
using Drakkar.Generators.Tests.Infrastructure;
using Drakkar.Generators.Tests.Payloads;
using Npgsql;

namespace Drakkar.Generators.Tests;

/// <summary>Rows from the generated <c>Columns</c>/<c>WriteRow</c>, inserted into and read back from a real PostgreSQL.</summary>
public sealed class PostgresRowTests(PostgresServer server) : IClassFixture<PostgresServer>
{
    private static readonly RowSample Sample = new(
        "héllo 'quoted' \"double\" ☃", null, true, byte.MaxValue, short.MinValue, ushort.MaxValue, int.MinValue, uint.MaxValue,
        long.MaxValue, ulong.MaxValue, 1.25f, Math.PI, 12345678901234567890.123456789m,
        new DateTime(2024, 2, 29, 12, 34, 56, DateTimeKind.Unspecified).AddTicks(1234560),
        new DateTimeOffset(2023, 12, 31, 23, 0, 0, TimeSpan.FromHours(-5)).AddTicks(10),
        Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), [0, 1, 255, 0], Severity.High, Channel.Sms, 42, null, null,
        new Address("12 Rue de l'Église", "Paris", null), ["a", "ü", ""], null);

    [Fact]
    public void Columns_use_snake_case_names_and_PostgreSQL_types()
    {
        Assert.Equal(
            [
                "text text", "null_text text", "flag bool", "small int2", "int16 int2", "u_int16 int4", "int32 int4", "u_int32 int8",
                "int64 int8", "u_int64 numeric", "single float4", "double float8", "money numeric", "when timestamptz",
                "at timestamptz", "id uuid", "blob bytea", "level int4", "via text", "maybe_number int4", "no_number int8",
                "no_at timestamptz", "nested jsonb", "tags jsonb", "no_map jsonb",
            ],
            RowSample.Columns.Select(c => c.Name + " " + c.DataTypeName));
    }

    [Fact]
    public async Task A_row_round_trips_through_PostgreSQL_with_every_column_type()
    {
        var table = await CreateTableAsync<RowSample>("row_sample");
        await InsertAsync(table, Sample);

        await using var command = server.DataSource.CreateCommand($"SELECT * FROM {table}");
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());

        Assert.Equal(Sample.Text, reader.GetFieldValue<string>(0));
        Assert.True(reader.IsDBNull(1));
        Assert.True(reader.GetFieldValue<bool>(2));
        Assert.Equal(Sample.Small, reader.GetFieldValue<short>(3));
        Assert.Equal(Sample.Int16, reader.GetFieldValue<short>(4));
        Assert.Equal(Sample.UInt16, reader.GetFieldValue<int>(5));
        Assert.Equal(Sample.Int32, reader.GetFieldValue<int>(6));
        Assert.Equal(Sample.UInt32, reader.GetFieldValue<long>(7));
        Assert.Equal(Sample.Int64, reader.GetFieldValue<long>(8));
        Assert.Equal(Sample.UInt64, reader.GetFieldValue<decimal>(9));
        Assert.Equal(Sample.Single, reader.GetFieldValue<float>(10));
        Assert.Equal(Sample.Double, reader.GetFieldValue<double>(11));
        Assert.Equal(Sample.Money, reader.GetFieldValue<decimal>(12));
        Assert.Equal(DateTime.SpecifyKind(Sample.When, DateTimeKind.Utc), reader.GetFieldValue<DateTime>(13));
        Assert.Equal(Sample.At, reader.GetFieldValue<DateTimeOffset>(14));
        Assert.Equal(Sample.Id, reader.GetFieldValue<Guid>(15));
        Assert.Equal(Sample.Blob, reader.GetFieldValue<byte[]>(16));
        Assert.Equal((int)Severity.High, reader.GetFieldValue<int>(17));
        Assert.Equal("sms-text", reader.GetFieldValue<string>(18));
        Assert.Equal(42, reader.GetFieldValue<int>(19));
        Assert.True(reader.IsDBNull(20));
        Assert.True(reader.IsDBNull(21));
        Assert.Equal(Sample.Nested, Json.Read<Address>(reader.GetFieldValue<string>(22)));
        Assert.Equal(Sample.Tags, JsonSerializer.Deserialize<string[]>(reader.GetFieldValue<string>(23)));
        Assert.True(reader.IsDBNull(24));
    }

    [Fact]
    public async Task Class_payloads_and_nested_json_columns_round_trip()
    {
        var table = await CreateTableAsync<Settings>("settings_rows");
        foreach (var settings in SampleValues.Settings()) await InsertAsync(table, settings);

        await using var command = server.DataSource.CreateCommand(
            $"SELECT name, retries, timeout ->> 'on_timeout', comment, jsonb_array_length(hosts) FROM {table} ORDER BY name");
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(string.Join("|", Enumerable.Range(0, 5).Select(i => reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture))));
        }

        Assert.Equal(["all|-1|stop|cé|2", "defaults|3|fail|NULL|0", "nulls|3|NULL|NULL|NULL"], rows);
    }

    private async Task<string> CreateTableAsync<T>(string name) where T : IPayload<T>
    {
        var columns = string.Join(", ", T.Columns.Select(c => $"\"{c.Name}\" {c.DataTypeName}"));
        await using var command = server.DataSource.CreateCommand($"DROP TABLE IF EXISTS {name}; CREATE TABLE {name} ({columns})");
        await command.ExecuteNonQueryAsync();
        return name;
    }

    private async Task InsertAsync<T>(string table, T value) where T : IPayload<T>
    {
        var row = new ParameterRowWriter(T.Columns);
        T.WriteRow(row, value);
        Assert.Equal(T.Columns.Count, row.Parameters.Count);
        var names = string.Join(", ", T.Columns.Select(c => $"\"{c.Name}\""));
        var placeholders = string.Join(", ", Enumerable.Range(1, row.Parameters.Count).Select(i => "$" + i));
        await using var command = server.DataSource.CreateCommand($"INSERT INTO {table} ({names}) VALUES ({placeholders})");
        command.Parameters.AddRange(row.Parameters.ToArray());
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }

    /// <summary>Turns generated row writes into typed Npgsql parameters, the way the PostgreSQL sink binds them.</summary>
    private sealed class ParameterRowWriter(IReadOnlyList<PayloadColumn> columns) : IRowWriter
    {
        public List<NpgsqlParameter> Parameters { get; } = [];

        public void Write<T>(T? value)
        {
            var column = columns[Parameters.Count];
            Parameters.Add(value is null
                ? new NpgsqlParameter { Value = DBNull.Value, DataTypeName = column.DataTypeName }
                : new NpgsqlParameter<T> { TypedValue = value, DataTypeName = column.DataTypeName });
        }

        public void WriteJson<TState>(TState state, Action<System.Text.Json.Utf8JsonWriter, TState> write)
        {
            var buffer = new ArrayBufferWriter<byte>();
            using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
            {
                write(writer, state);
            }
            Parameters.Add(new NpgsqlParameter<string>
            {
                TypedValue = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan),
                DataTypeName = columns[Parameters.Count].DataTypeName,
            });
        }
    }
}
