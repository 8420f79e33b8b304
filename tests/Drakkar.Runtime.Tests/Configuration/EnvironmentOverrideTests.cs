namespace Drakkar.Runtime.Tests.Configuration;

using static ConfigTestSupport;

public sealed class EnvironmentOverrideTests
{
    private const string Yaml = """
        kafka: { brokers: "file:9092", commit_interval_ms: 10 }
        executor: { max_executors: 2 }
        sinks:
          kafka:
            results: { topic: from-file, brokers: "file:9092" }
        """;

    [Fact]
    public void Overrides_win_over_the_file_and_are_converted_to_the_key_type()
    {
        var config = ConfigLoader.LoadFromYaml(Yaml, Env(
            ("DK_KAFKA__BROKERS", "env:9092"),
            ("DK_EXECUTOR__MAX_EXECUTORS", "16"),
            ("DK_EXECUTOR__ENV_INHERIT_PARENT", "false"),
            ("DK_CACHE__PEER_SYNC__INTERVAL_SECONDS", "12.5"),
            ("DK_LOGGING__FORMAT", "console")));

        Assert.Equal("env:9092", config.Kafka.Brokers);
        Assert.Equal(10, config.Kafka.CommitIntervalMs);
        Assert.Equal(16, config.Executor.MaxExecutors);
        Assert.False(config.Executor.EnvInheritParent);
        Assert.Equal(12.5, config.Cache.PeerSync.IntervalSeconds);
        Assert.Equal(LogFormat.Console, config.Logging.Format);
    }

    [Fact]
    public void Names_match_without_regard_to_case()
    {
        var config = ConfigLoader.LoadFromYaml(Yaml, Env(("dk_Kafka__Source_Topic", "mixed-case")));

        Assert.Equal("mixed-case", config.Kafka.SourceTopic);
    }

    [Fact]
    public void An_override_changes_one_key_of_an_existing_sink_instance_and_keeps_the_rest()
    {
        var config = ConfigLoader.LoadFromYaml(Yaml, Env(("DK_SINKS__KAFKA__RESULTS__TOPIC", "from-env")));

        var results = Assert.Single(config.Sinks.Kafka).Value;
        Assert.Equal("from-env", results.Topic);
        Assert.Equal("file:9092", results.Brokers);
    }

    [Fact]
    public void An_override_creates_sink_instances_that_the_file_does_not_have()
    {
        var config = ConfigLoader.LoadFromYaml(Yaml, Env(
            ("DK_SINKS__KAFKA__ALERTS__TOPIC", "search-alerts"),
            ("DK_SINKS__POSTGRES__MAIN__DSN", "Host=db;Password=x"),
            ("DK_SINKS__POSTGRES__MAIN__POOL_MAX", "3"),
            ("DK_SINKS__CUSTOM__S3__ARCHIVE__BUCKET", "b1"),
            ("DK_SINKS__CUSTOM__S3__ARCHIVE__LINGER_MS", "25")));

        Assert.Equal("search-alerts", config.Sinks.Kafka["alerts"].Topic);
        Assert.Equal("from-file", config.Sinks.Kafka["results"].Topic);
        Assert.Equal(("Host=db;Password=x", 3), (config.Sinks.Postgres["main"].Dsn, config.Sinks.Postgres["main"].PoolMax));
        Assert.Equal("b1", config.Sinks.Custom["s3"]["archive"].Settings["bucket"]);
        Assert.Equal(25, config.Sinks.Custom["s3"]["archive"].LingerMs);
        Assert.False(config.Sinks.Custom["s3"]["archive"].Settings.ContainsKey("linger_ms"));
    }

    [Fact]
    public void Overrides_alone_configure_a_worker_without_any_file()
    {
        var directory = Directory.CreateTempSubdirectory("drakkar-config-");
        try
        {
            var config = ConfigLoader.Load(null, Env(("DK_KAFKA__SOURCE_TOPIC", "only-env")), directory.FullName);

            Assert.Equal("only-env", config.Kafka.SourceTopic);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void Lists_come_comma_separated_or_inline_and_maps_inline_or_key_by_key()
    {
        var config = ConfigLoader.LoadFromYaml("sinks: { http: { hook: { url: 'https://h.example/x' } } }", Env(
            ("DK_EXECUTOR__ENV_INHERIT_DENY", "DK_*, *TOKEN*"),
            ("DK_DEBUG__EXPOSE_ENV_VARS", """["REGION", "ZONE"]"""),
            ("DK_EXECUTOR__ENV__LOG_LEVEL", "debug"),
            ("DK_EXECUTOR__PROCESS_ARGS", """["--fields=a,b", "-v"]"""),
            ("DK_SINKS__HTTP__HOOK__HEADERS", """{"X-Team": "search", "X-Env": "prod"}""")));

        Assert.Equal(["DK_*", "*TOKEN*"], config.Executor.EnvInheritDeny);
        Assert.Equal(["--fields=a,b", "-v"], config.Executor.ProcessArgs);
        Assert.Equal(["REGION", "ZONE"], config.Debug.ExposeEnvVars);
        Assert.Equal("debug", config.Executor.Env["LOG_LEVEL"]);
        Assert.Equal("search", config.Sinks.Http["hook"].Headers["x-team"]);
        Assert.Equal("prod", config.Sinks.Http["hook"].Headers["X-Env"]);
        // An empty value is an empty list, replacing the default (DK_*).
        Assert.Empty(ConfigLoader.LoadFromYaml("", Env(("DK_EXECUTOR__ENV_INHERIT_DENY", ""))).Executor.EnvInheritDeny);
    }

    [Fact]
    public void A_bad_value_names_the_variable_and_the_key()
    {
        var error = LoadFails(Yaml, Env(("DK_EXECUTOR__MAX_EXECUTORS", "many"), ("DK_METRICS__PORT", "0")));

        var executors = ProblemAt(error, "executor.max_executors");
        Assert.Equal("env DK_EXECUTOR__MAX_EXECUTORS", executors.Source);
        Assert.Contains("whole number", executors.Message, StringComparison.Ordinal);
        Assert.Equal("must be ≥ 1 (got 0)", ProblemAt(error, "metrics.port").Message);
        Assert.Contains("executor.max_executors: must be a whole number (got 'many') [env DK_EXECUTOR__MAX_EXECUTORS]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Null_or_tilde_clears_a_key_that_accepts_null_as_yaml_null_does()
    {
        var config = ConfigLoader.LoadFromYaml("""
            executor: { binary_path: /bin/cat }
            cache: { max_memory_entries: 50, stale_file_hours: 48, peer_sync: { cycle_deadline_seconds: 5 } }
            """, Env(
            ("DK_CACHE__MAX_MEMORY_ENTRIES", "null"),
            ("DK_CACHE__STALE_FILE_HOURS", " ~ "),
            ("DK_CACHE__PEER_SYNC__CYCLE_DEADLINE_SECONDS", "NULL"),
            ("DK_EXECUTOR__BINARY_PATH", "Null"),
            ("DK_KAFKA__CONSUMER_GROUP", "null")));

        Assert.Null(config.Cache.MaxMemoryEntries);
        Assert.Null(config.Cache.StaleFileHours);
        Assert.Null(config.Cache.PeerSync.CycleDeadlineSeconds);
        Assert.Null(config.Executor.BinaryPath);
        // A key that does not accept null takes the text as it is.
        Assert.Equal("null", config.Kafka.ConsumerGroup);
    }

    [Fact]
    public void Null_for_a_key_that_does_not_accept_it_is_reported_as_a_bad_value()
    {
        var error = LoadFails(Yaml, Env(("DK_EXECUTOR__MAX_EXECUTORS", "null")));

        Assert.Equal("must be a whole number (got 'null')", ProblemAt(error, "executor.max_executors").Message);
    }

    [Fact]
    public void An_unknown_override_is_an_error_with_a_suggestion_and_dk_config_is_not_a_key()
    {
        var error = LoadFails(Yaml, Env(("DK_KAFKA__BROKRS", "x:1"), ("DK_CONFIG", "/nowhere.yaml")));

        var problem = Assert.Single(error.Problems);
        Assert.Equal("kafka.brokrs", problem.Path);
        Assert.Equal("unknown key; did you mean 'brokers'?", problem.Message);
        Assert.Equal("env DK_KAFKA__BROKRS", problem.Source);
    }

    [Fact]
    public void A_misplaced_secret_is_masked_in_the_error()
    {
        var error = LoadFails("", Env(("DK_SINKS__POSTGRES__MAIN", "postgresql://app:hunter2@db/app")));

        Assert.Equal("must be a mapping of keys, got 'postgresql://app:***@db/app'", ProblemAt(error, "sinks.postgres.main").Message);
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Environment_values_are_taken_literally_not_expanded()
    {
        var config = ConfigLoader.LoadFromYaml("", Env(("DK_KAFKA__CONSUMER_GROUP", "${NOT_EXPANDED}")));

        Assert.Equal("${NOT_EXPANDED}", config.Kafka.ConsumerGroup);
    }
}
