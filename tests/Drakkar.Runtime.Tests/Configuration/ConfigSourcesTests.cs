using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using static Drakkar.Runtime.Tests.Configuration.ConfigTestSupport;

namespace Drakkar.Runtime.Tests.Configuration;

/// <summary>
/// The configuration as a .NET host builds it (AddDrakkar's sources in a real HostApplicationBuilder): the YAML file,
/// then appsettings.json, then DK_ variables, then the command line, each over the ones before.
/// </summary>
public sealed class ConfigSourcesTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("drakkar-sources-");

    private IConfiguration Build(string yaml, string? appsettings, IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "drakkar.yaml"), yaml);
        if (appsettings is not null) File.WriteAllText(Path.Combine(_dir.FullName, "appsettings.json"), appsettings);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = _dir.FullName });
        DrakkarServiceCollectionExtensions.AddSources(builder.Configuration, Path.Combine(_dir.FullName, "drakkar.yaml"), environment);
        return builder.Configuration;
    }

    [Fact]
    public void Each_source_overrides_the_ones_below_it_yaml_then_appsettings_then_DK_variables_then_the_command_line()
    {
        var configuration = Build("""
            kafka:
              brokers: yaml:9092
              source_topic: yaml-topic
              consumer_group: yaml-group
              group_instance_id: yaml-client
            executor:
              max_executors: 3
            """,
            """{ "Kafka": { "source_topic": "json-topic", "consumer_group": "json-group", "group_instance_id": "json-client" }, "Logging": { "LogLevel": { "Default": "Warning" } } }""",
            Env(("DK_KAFKA__CONSUMER_GROUP", "env-group"), ("DK_KAFKA__GROUP_INSTANCE_ID", "env-client")),
            "--kafka:group_instance_id=cli-client", "--cache:max_memory_entries=null");

        var config = ConfigLoader.Bind(configuration);

        Assert.Equal("yaml:9092", config.Kafka.Brokers);
        Assert.Equal(3, config.Executor.MaxExecutors);
        Assert.Equal("json-topic", config.Kafka.SourceTopic);
        Assert.Equal("env-group", config.Kafka.ConsumerGroup);
        Assert.Equal("cli-client", config.Kafka.GroupInstanceId);
        Assert.Null(config.Cache.MaxMemoryEntries);
        // .NET's own Logging:LogLevel in appsettings.json is not one of Drakkar's logging keys, and is not reported.
        Assert.Equal("Warning", configuration["Logging:LogLevel:Default"]);
    }

    [Fact]
    public void Mistakes_in_appsettings_and_on_the_command_line_are_reported_with_their_source_and_a_suggestion()
    {
        var configuration = Build("kafka:\n  source_topic: t\n", """{ "executor": { "max_executors": "many" } }""", Env(),
            "--executor:max_executorz=2");

        var problems = Assert.Throws<ConfigException>(() => ConfigLoader.Bind(configuration)).Problems;

        var json = Assert.Single(problems, problem => problem.Path == "executor.max_executors");
        Assert.Equal("appsettings.json", json.Source);
        var cli = Assert.Single(problems, problem => problem.Path == "executor.max_executorz");
        Assert.Equal("command line", cli.Source);
        Assert.Contains("did you mean 'max_executors'", cli.Message);
    }

    [Fact]
    public void An_application_section_of_the_yaml_is_readable_through_IConfiguration_and_accepted_only_once_declared()
    {
        var configuration = Build("kafka:\n  source_topic: t\ngreeter:\n  greeting: hello ${WHO}\n", null,
            Env(("WHO", "world"), ("DK_GREETER__PUNCTUATION", "!")));

        Assert.Equal("hello world", configuration["greeter:greeting"]);
        Assert.Equal("!", configuration["greeter:punctuation"]);
        var undeclared = Assert.Throws<ConfigException>(() => ConfigLoader.Bind(configuration));
        Assert.Contains(undeclared.Problems, problem => problem.Path == "greeter");
        Assert.Equal("t", ConfigLoader.Bind(configuration, ["greeter"]).Kafka.SourceTopic);
    }

    [Fact]
    public void A_typo_in_an_application_section_suggests_the_declared_section_and_an_undeclared_one_says_how_to_declare_it()
    {
        var typo = Build("kafka:\n  source_topic: t\ngreeterr:\n  greeting: hi\n", null, Env());
        var mistyped = Assert.Single(Assert.Throws<ConfigException>(() => ConfigLoader.Bind(typo, ["greeter"])).Problems);
        Assert.Equal("greeterr", mistyped.Path);
        Assert.Equal("unknown key; did you mean 'greeter'?", mistyped.Message);

        var undeclared = Build("kafka:\n  source_topic: t\nbilling:\n  plan: gold\n", null, Env());
        var problem = Assert.Single(Assert.Throws<ConfigException>(() => ConfigLoader.Bind(undeclared)).Problems);
        Assert.Equal("billing", problem.Path);
        Assert.EndsWith("a section of the application's own is accepted once declared in DrakkarAppOptions.ApplicationSections", problem.Message);
    }

    private sealed class NoTasks : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    [Fact]
    public void AddDrakkar_in_an_own_host_reads_the_yaml_file_named_by_config_on_the_hosts_command_line()
    {
        var named = Path.Combine(_dir.FullName, "named.yaml");
        File.WriteAllText(named, "kafka:\n  source_topic: from-the-named-file\n");
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = ["--config", named], ContentRootPath = _dir.FullName });

        builder.Services.AddDrakkar<NoTasks>(builder.Configuration);

        Assert.Equal("from-the-named-file", ConfigLoader.Bind(builder.Configuration).Kafka.SourceTopic);
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
