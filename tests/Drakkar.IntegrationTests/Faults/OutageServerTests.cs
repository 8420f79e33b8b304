using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Npgsql;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// The outage scenarios kill a server and count, after its restart, what a worker wrote: that is only a test of the
/// worker if the killed server keeps every write it acknowledged. A server that forgets them makes a worker that
/// delivered everything look like one that lost data (or never resumed).
/// </summary>
[Collection(FaultServersCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class OutageServerTests(PostgresServer postgres, RedisServer redis)
{
    [Fact]
    public void A_killed_redis_comes_back_with_every_key_it_acknowledged()
    {
        var prefix = $"kept-{Guid.NewGuid():N}:";
        using (var client = new Resp(redis.Port))
        {
            for (var i = 0; i < 100; i++) Assert.Equal("OK", client.Call("SET", $"{prefix}{i}", "v"));
        }

        redis.Stop();
        redis.Start();

        using var after = new Resp(redis.Port);
        var kept = after.Call("EVAL", "return #redis.call('KEYS', ARGV[1])", "0", $"{prefix}*");
        Assert.Equal("100", kept);
    }

    [Fact]
    public void A_killed_postgresql_comes_back_with_every_row_it_acknowledged()
    {
        var database = postgres.CreateDatabase($"kept_{Guid.NewGuid():N}");
        using (var connection = new NpgsqlConnection(database))
        {
            connection.Open();
            using (var create = new NpgsqlCommand("CREATE TABLE kept (id int PRIMARY KEY)", connection)) create.ExecuteNonQuery();
            // One commit per row, the way a sink writes, and the kill right after the last one is acknowledged.
            for (var i = 0; i < 200; i++)
            {
                using var insert = new NpgsqlCommand($"INSERT INTO kept VALUES ({i})", connection);
                insert.ExecuteNonQuery();
            }
        }

        postgres.Stop();
        postgres.Start();

        using var reopened = new NpgsqlConnection(database);
        reopened.Open();
        using var count = new NpgsqlCommand("SELECT count(*) FROM kept", reopened);
        Assert.Equal(200L, (long)count.ExecuteScalar()!);
    }
}
