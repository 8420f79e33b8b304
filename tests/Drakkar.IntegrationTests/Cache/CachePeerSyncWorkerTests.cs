using System.Text;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Cache;

/// <summary>Two workers of one consumer group share a cached value through peer sync (cache.peer_sync.*).</summary>
[Collection(KafkaCollection.Name)]
public sealed class CachePeerSyncWorkerTests(KafkaBroker kafka) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-cache-peers-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Caches each message's value under its key, shared with the cluster; arranges no task.</summary>
    private sealed class RememberingHandler : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
        {
            foreach (var message in messages)
                Cache.Set(Encoding.UTF8.GetString(message.Key!), message.Value, ttl: TimeSpan.FromMinutes(5), scope: CacheScope.Cluster);
            return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
        }
    }

    [Fact]
    public async Task A_value_one_worker_caches_is_read_by_the_other_worker_of_the_group_after_a_sync()
    {
        var topic = kafka.CreateTopic("cache-peers");
        var group = $"cache-peers-{Guid.NewGuid():N}";
        DrakkarConfig Config() => TestWorker.Config(kafka.BootstrapServers, topic, group, c =>
        {
            c.Cache.Enabled = true;
            c.Cache.DbDir = _dir;
            c.Cache.FlushIntervalSeconds = 0.1;
            c.Cache.PeerSync.IntervalSeconds = 0.2;
        });
        var first = new RememberingHandler();
        var second = new RememberingHandler();
        await using var writer = await TestWorker.StartAsync(first, Config(), workerId: "cache-writer");
        await using var reader = await TestWorker.StartAsync(second, Config(), workerId: "cache-reader");
        // The topic has one partition, so exactly one of the two consumes it; the other learns the value from its peer.
        await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, partitions: 1, count: 1);

        var owner = await Eventually.Get(() => first.Cache.Contains("k0") ? first : second.Cache.Contains("k0") ? second : null,
            h => h is not null, TimeSpan.FromSeconds(30), "one worker cached k0");
        var peer = owner == first ? second : first;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        string? shared;
        while ((shared = await peer.Cache.GetStringAsync("k0")) is null && DateTime.UtcNow < deadline) await Task.Delay(20);

        Assert.Equal("m-0", shared);
        Assert.Equal(2, Directory.GetFiles(_dir, "*-cache.db").Length);
    }
}
