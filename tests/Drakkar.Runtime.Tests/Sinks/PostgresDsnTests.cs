using Drakkar.Sinks.Postgres;
using Npgsql;

namespace Drakkar.Runtime.Tests.Sinks;

/// <summary>sinks.postgres.*.dsn as a libpq URI (Python Drakkar's form) or an Npgsql connection string.</summary>
public sealed class PostgresDsnTests
{
    [Fact]
    public void A_URI_becomes_the_equivalent_connection_string_with_its_parts_percent_decoded()
    {
        var settings = new NpgsqlConnectionStringBuilder(PostgresDsn.ToConnectionString(
            "postgresql://drakkar:p%40ss%3Bword@db.internal:6432/results%20db?sslmode=verify-full&application_name=worker-1&connect_timeout=7"));

        Assert.Equal(("db.internal", 6432, "drakkar", "p@ss;word", "results db"),
            (settings.Host, settings.Port, settings.Username, settings.Password, settings.Database));
        Assert.Equal((SslMode.VerifyFull, "worker-1", 7), (settings.SslMode, settings.ApplicationName, settings.Timeout));
    }

    [Fact]
    public void Several_hosts_an_IPv6_literal_and_the_short_scheme_are_understood()
    {
        var settings = new NpgsqlConnectionStringBuilder(PostgresDsn.ToConnectionString("postgres://app@primary:5432,[::1]:5433/app"));

        Assert.Equal(("primary:5432,::1:5433", "app", "app"), (settings.Host, settings.Username, settings.Database));
    }

    [Fact]
    public void A_connection_string_is_kept_as_it_is()
    {
        const string dsn = "Host=db;Username=app;Password=secret;Database=app;Maximum Pool Size=5";
        Assert.Equal(dsn, PostgresDsn.ToConnectionString(dsn));
    }

    [Theory]
    [InlineData("postgresql://app@db/app?fallback_application_name=x", "the URI parameter 'fallback_application_name' is not one Drakkar for .NET maps to Npgsql")]
    [InlineData("host db user app", "Format of the initialization string does not conform to specification")]
    [InlineData("postgresql://app@db:54x2/app", "the URI's Port '54x2' is not valid")]
    public void A_DSN_that_is_neither_is_refused_saying_why(string dsn, string problem)
    {
        Assert.StartsWith(problem, PostgresDsn.Problem(dsn));
        Assert.Null(PostgresDsn.Problem("postgresql://app:secret@db:5432/app"));
    }
}
