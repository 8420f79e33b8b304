namespace Drakkar.Runtime.Tests.Configuration;

using static ConfigTestSupport;

public sealed class VariableExpansionTests
{
    [Fact]
    public void Set_variables_expand_inside_string_values()
    {
        var config = ConfigLoader.LoadFromYaml("""
            kafka: { brokers: "${KAFKA_HOST}:${KAFKA_PORT}" }
            sinks:
              postgres:
                main: { dsn: "Host=db;Username=app;Password=${PG_PASSWORD};Database=app" }
              http:
                hook: { url: "https://h.example/in", headers: { Authorization: "Bearer ${API_TOKEN}" } }
            """, Env(("KAFKA_HOST", "k1"), ("KAFKA_PORT", "9093"), ("PG_PASSWORD", "s3cret"), ("API_TOKEN", "tok")));

        Assert.Equal("k1:9093", config.Kafka.Brokers);
        Assert.Equal("Host=db;Username=app;Password=s3cret;Database=app", config.Sinks.Postgres["main"].Dsn);
        Assert.Equal("Bearer tok", config.Sinks.Http["hook"].Headers["Authorization"]);
    }

    [Fact]
    public void Defaults_apply_when_the_variable_is_unset_or_empty()
    {
        var config = ConfigLoader.LoadFromYaml("""
            kafka: { brokers: "${KAFKA:-localhost:9092}", source_topic: "${TOPIC:-events}", consumer_group: "${GROUP:-g}" }
            executor: { max_executors: "${WORKERS:-6}" }
            """, Env(("TOPIC", ""), ("GROUP", "set-group")));

        Assert.Equal("localhost:9092", config.Kafka.Brokers);
        Assert.Equal("events", config.Kafka.SourceTopic);
        Assert.Equal("set-group", config.Kafka.ConsumerGroup);
        Assert.Equal(6, config.Executor.MaxExecutors);
    }

    [Fact]
    public void An_unset_variable_without_default_is_an_error_naming_the_variable_and_the_key()
    {
        var error = LoadFails("""
            kafka:
              brokers: "${KAFKA_BROKERS}"
            sinks:
              postgres:
                main: { dsn: "Password=${PG_PASSWORD}" }
            """, Env());

        var brokers = ProblemAt(error, "kafka.brokers");
        Assert.Contains("'KAFKA_BROKERS' is not set", brokers.Message, StringComparison.Ordinal);
        Assert.Equal("line 2", brokers.Source);
        Assert.Contains("'PG_PASSWORD' is not set", ProblemAt(error, "sinks.postgres.main.dsn").Message, StringComparison.Ordinal);
        Assert.Equal(2, error.Problems.Count);
    }

    [Fact]
    public void A_doubled_dollar_keeps_a_literal_placeholder()
    {
        var config = ConfigLoader.LoadFromYaml("""kafka: { consumer_group: "price-$${AMOUNT}-$5" }""", Env(("AMOUNT", "10")));

        Assert.Equal("price-${AMOUNT}-$5", config.Kafka.ConsumerGroup);
    }

    [Fact]
    public void An_unterminated_placeholder_is_reported()
    {
        var error = LoadFails("""kafka: { consumer_group: "${OOPS" }""", Env());

        Assert.Contains("unterminated", ProblemAt(error, "kafka.consumer_group").Message, StringComparison.Ordinal);
    }
}
