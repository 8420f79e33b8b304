namespace Drakkar.Runtime.Tests.Configuration;

using static ConfigTestSupport;

public sealed class ConfigFileTests : IDisposable
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("drakkar-config-");

    public void Dispose() => _directory.Delete(recursive: true);

    private string Write(string name, string yaml)
    {
        var path = Path.Combine(_directory.FullName, name);
        File.WriteAllText(path, yaml);
        return path;
    }

    [Fact]
    public void An_explicit_path_is_loaded_from_disk()
    {
        var path = Write("worker.yaml", "kafka: { source_topic: from-explicit }\n");

        var config = ConfigLoader.Load(path, Env(), _directory.FullName);

        Assert.Equal("from-explicit", config.Kafka.SourceTopic);
    }

    [Fact]
    public void Dk_config_names_the_file_when_no_path_is_given_and_a_relative_name_resolves_in_the_working_directory()
    {
        Write("from-env.yaml", "kafka: { source_topic: from-dk-config }\n");
        Write("drakkar.yaml", "kafka: { source_topic: from-default-file }\n");
        var environment = Env(("DK_CONFIG", "from-env.yaml"));

        var config = ConfigLoader.Load(null, environment, _directory.FullName);

        Assert.Equal("from-dk-config", config.Kafka.SourceTopic);
        Assert.Equal(Path.Combine(_directory.FullName, "from-env.yaml"), ConfigLoader.ResolvePath(null, environment, _directory.FullName));
    }

    [Fact]
    public void An_explicit_path_wins_over_dk_config()
    {
        var explicitPath = Write("explicit.yaml", "kafka: { source_topic: explicit }\n");
        var environmentPath = Write("env.yaml", "kafka: { source_topic: env }\n");

        var config = ConfigLoader.Load(explicitPath, Env(("DK_CONFIG", environmentPath)), _directory.FullName);

        Assert.Equal("explicit", config.Kafka.SourceTopic);
    }

    [Fact]
    public void Drakkar_yaml_in_the_working_directory_is_used_when_nothing_is_named()
    {
        Write("drakkar.yaml", "kafka: { source_topic: from-default-file }\n");

        Assert.Equal("from-default-file", ConfigLoader.Load(null, Env(), _directory.FullName).Kafka.SourceTopic);
    }

    [Fact]
    public void Without_any_file_the_defaults_apply()
    {
        Assert.Null(ConfigLoader.ResolvePath(null, Env(), _directory.FullName));
        Assert.Equal("input-events", ConfigLoader.Load(null, Env(), _directory.FullName).Kafka.SourceTopic);
    }

    [Fact]
    public void A_missing_file_named_by_dk_config_is_an_error_saying_so()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Load(null, Env(("DK_CONFIG", "missing.yaml")), _directory.FullName));

        var problem = Assert.Single(error.Problems);
        Assert.Equal($"configuration file '{Path.Combine(_directory.FullName, "missing.yaml")}' (named by DK_CONFIG) does not exist", problem.Message);
    }

    [Fact]
    public void A_directory_named_as_the_file_is_an_error_saying_so()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Load(_directory.FullName, Env(), _directory.FullName));

        var problem = Assert.Single(error.Problems);
        Assert.Equal($"configuration file '{_directory.FullName}' (given by --config) is a directory; name the YAML file in it", problem.Message);
    }

    [Fact]
    public void Problems_in_a_file_name_the_file_and_the_line()
    {
        var path = Write("bad.yaml", "kafka:\n  source_topic: ok\n  max_poll_interval_ms: 0\n");

        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path, Env(), _directory.FullName));

        Assert.Equal(path, error.Origin);
        Assert.Equal($"Invalid configuration in {path} (1 problem):\n  kafka.max_poll_interval_ms: must be ≥ 1 (got 0) [line 3]", error.Message);
    }

    [Fact]
    public void Problems_only_in_overrides_say_so_instead_of_pointing_at_the_file()
    {
        var path = Write("good.yaml", "kafka:\n  source_topic: ok\n");

        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path, Env(("DK_EXECUTOR__MAX_EXECUTORS", "abc")), _directory.FullName));

        Assert.Equal($"Invalid configuration in overrides of {path} (1 problem):\n  executor.max_executors: must be a whole number (got 'abc') [env DK_EXECUTOR__MAX_EXECUTORS]",
            error.Message);
    }

    [Fact]
    public void A_rule_across_sections_points_at_the_key_it_names_in_the_file_or_the_environment()
    {
        var path = Write("ports.yaml", "kafka:\n  source_topic: ok\nmetrics:\n  port: 9099\ndebug:\n  enabled: true\n  port: 9099\n");

        var fromFile = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path, Env(), _directory.FullName));
        var fromEnv = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path, Env(("DK_DEBUG__PORT", "9100"), ("DK_METRICS__PORT", "9100")),
            _directory.FullName));

        Assert.Equal(("debug.port", "line 7"), (Assert.Single(fromFile.Problems).Path, fromFile.Problems[0].Source));
        Assert.Equal(("debug.port", "env DK_DEBUG__PORT"), (Assert.Single(fromEnv.Problems).Path, fromEnv.Problems[0].Source));
    }

    [Fact]
    public void File_values_expand_variables_and_environment_overrides_still_win()
    {
        var path = Write("worker.yaml", "kafka: { brokers: \"${HOST}:9092\", source_topic: file-topic }\n");

        var config = ConfigLoader.Load(path, Env(("HOST", "k1"), ("DK_KAFKA__SOURCE_TOPIC", "env-topic")), _directory.FullName);

        Assert.Equal(("k1:9092", "env-topic"), (config.Kafka.Brokers, config.Kafka.SourceTopic));
    }
}
