using Drakkar.Configuration;
using Drakkar.Hosting;
using Microsoft.Extensions.Configuration;

namespace Drakkar.Runtime.Tests.Hosting;

/// <summary>A worker on its built-in default configuration says which DK_ variables and arguments it does not apply.</summary>
public sealed class DefaultConfigOverridesTests
{
    [Fact]
    public void The_keys_set_by_dk_variables_and_the_command_line_are_named()
    {
        var environment = new Dictionary<string, string?>
        {
            ["DK_DEBUG__ENABLED"] = "true",
            ["DK_KAFKA__CONSUMER_GROUP"] = "g",
            ["PATH"] = "/usr/bin",
        };
        var configuration = new ConfigurationBuilder()
            .Add(new DrakkarEnvironmentSource(environment))
            .AddCommandLine(["--debug:port=9999", "--debug:enabled=true"])
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Information" })
            .Build();

        var ignored = DrakkarApp.IgnoredOnDefaultConfig(configuration);

        Assert.Equal(["debug.enabled", "debug.port", "kafka.consumer_group"], ignored.Order(StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public void Nothing_is_named_without_overrides()
    {
        var configuration = new ConfigurationBuilder().Add(new DrakkarEnvironmentSource(new Dictionary<string, string?> { ["HOME"] = "/root" })).Build();

        Assert.Empty(DrakkarApp.IgnoredOnDefaultConfig(configuration));
    }
}
