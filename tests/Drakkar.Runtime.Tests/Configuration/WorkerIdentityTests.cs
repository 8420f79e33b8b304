using System.Text.RegularExpressions;

namespace Drakkar.Runtime.Tests.Configuration;

using static ConfigTestSupport;

public sealed class WorkerIdentityTests
{
    [Fact]
    public void The_worker_id_comes_from_the_configured_variable()
    {
        var config = new DrakkarConfig { WorkerNameEnv = "POD_NAME" };

        var identity = WorkerIdentity.Resolve(config, Env(("POD_NAME", "search-7f9c"), ("WORKER_ID", "ignored")));

        Assert.Equal("search-7f9c", identity.WorkerId);
    }

    [Fact]
    public void Without_the_variable_a_worker_id_is_generated()
    {
        var first = WorkerIdentity.Resolve(new DrakkarConfig(), Env());
        var second = WorkerIdentity.Resolve(new DrakkarConfig(), Env(("WORKER_ID", "  ")));

        Assert.Matches(new Regex("^drakkar-[0-9a-f]{8}$"), first.WorkerId);
        Assert.Matches(new Regex("^drakkar-[0-9a-f]{8}$"), second.WorkerId);
        Assert.NotEqual(first.WorkerId, second.WorkerId);
    }

    [Fact]
    public void An_explicit_worker_id_wins()
    {
        var identity = WorkerIdentity.Resolve(new DrakkarConfig(), Env(("WORKER_ID", "from-env")), workerId: "explicit");

        Assert.Equal("explicit", identity.WorkerId);
    }

    [Fact]
    public void The_cluster_name_variable_wins_over_cluster_name_like_in_drakkar()
    {
        var config = new DrakkarConfig { ClusterName = "from-file", ClusterNameEnv = "CLUSTER" };

        Assert.Equal("from-env", WorkerIdentity.Resolve(config, Env(("CLUSTER", "from-env"))).ClusterName);
        Assert.Equal("from-file", WorkerIdentity.Resolve(config, Env()).ClusterName);
        Assert.Equal("", WorkerIdentity.Resolve(new DrakkarConfig(), Env(("CLUSTER", "unused"))).ClusterName);
    }
}
