using System.Runtime.InteropServices;
using System.Text;
using Confluent.Kafka;
using Drakkar.Execution.Posix;

namespace Drakkar.Kafka.Embedded;

/// <summary>
/// An in-process Kafka-protocol broker (librdkafka's mock cluster). It serves produce, fetch, consumer groups and
/// offset commits to any Kafka client on a loopback port. It keeps data in memory (roughly the last 5 MB per
/// partition), so it suits demos, tests and benchmarks that stream rather than hoard.
/// </summary>
internal sealed class EmbeddedKafkaBroker : IDisposable
{
    private readonly Lock _gate = new();
    private nint _client;
    private nint _cluster;

    private EmbeddedKafkaBroker(nint client, nint cluster, string bootstrapServers, int brokerCount)
    {
        _client = client;
        _cluster = cluster;
        BootstrapServers = bootstrapServers;
        BrokerCount = brokerCount;
    }

    /// <summary>The comma-separated <c>host:port</c> list clients connect to.</summary>
    public string BootstrapServers { get; }

    /// <summary>How many brokers the cluster has; broker ids run from 1 to this number.</summary>
    public int BrokerCount { get; }

    /// <summary>Starts a cluster of <paramref name="brokerCount"/> brokers on loopback ports.</summary>
    public static unsafe EmbeddedKafkaBroker Start(int brokerCount = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokerCount, 1);
        KafkaNativeLibrary.EnsureLoaded();
        var errorText = stackalloc byte[512];
        var conf = MockClusterNative.ConfNew();
        // The handle only hosts the mock cluster's thread; it never connects anywhere itself.
        if (MockClusterNative.ConfSet(conf, "log_level", "0", errorText, 512) != 0)
        {
            MockClusterNative.ConfDestroy(conf);
            throw new InvalidOperationException($"librdkafka rejected the embedded broker's configuration: {Text(errorText)}");
        }
        var client = MockClusterNative.KafkaNew(MockClusterNative.ProducerType, conf, errorText, 512);
        if (client == 0)
        {
            MockClusterNative.ConfDestroy(conf);
            throw new InvalidOperationException($"librdkafka could not create the embedded broker's host handle: {Text(errorText)}");
        }
        var cluster = NewClusterWithSignalsBlocked(client, brokerCount);
        if (cluster == 0)
        {
            MockClusterNative.KafkaDestroy(client);
            throw new InvalidOperationException("librdkafka could not start its mock cluster (rd_kafka_mock_cluster_new returned null).");
        }
        // KIP-848 groups (kafka.group_protocol: consumer) move partitions at the pace of heartbeats; the mock's 3 s
        // made each handover wait up to two of them. Kafka's own default is 5 s.
        MockClusterNative.SetGroupConsumerHeartbeatInterval(cluster, 1_000);
        var bootstraps = Marshal.PtrToStringUTF8(MockClusterNative.ClusterBootstraps(cluster)) ?? "";
        return new EmbeddedKafkaBroker(client, cluster, bootstraps, brokerCount);
    }

    /// <summary>
    /// Starts the mock cluster with every signal blocked on the calling thread, so the cluster's thread inherits that
    /// mask. librdkafka blocks all signals on the threads <c>rd_kafka_new</c> starts, but <c>rd_kafka_mock_cluster_new</c>
    /// starts its thread with the caller's mask, and that thread treats a failed <c>poll()</c>, EINTR included, as the
    /// end: it closes every listener and connection and frees the cluster. One signal with a handler (the runtime
    /// handles SIGCHLD, which every exiting task process sends) landing on that thread killed the broker mid-run, and
    /// <see cref="Dispose"/> then destroyed freed memory: a native heap abort.
    /// </summary>
    private static unsafe nint NewClusterWithSignalsBlocked(nint client, int brokerCount)
    {
        if (!OperatingSystem.IsLinux()) return MockClusterNative.ClusterNew(client, brokerCount);
        var all = stackalloc byte[LibC.SigSetSize];
        var previous = stackalloc byte[LibC.SigSetSize];
        LibC.SigFillSet(all);
        var error = LibC.PthreadSigMask(LibC.SIG_BLOCK, all, previous);
        if (error != 0)
            throw new InvalidOperationException($"Could not block signals for the embedded broker's thread: {Marshal.GetPInvokeErrorMessage(error)} (errno {error}).");
        try
        {
            return MockClusterNative.ClusterNew(client, brokerCount);
        }
        finally
        {
            LibC.PthreadSigMask(LibC.SIG_SETMASK, previous, null);
        }
    }

    /// <summary>Creates <paramref name="topic"/> with <paramref name="partitions"/> partitions.</summary>
    public void CreateTopic(string topic, int partitions = 1, int replicationFactor = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        Check(MockClusterNative.TopicCreate(Cluster, topic, partitions, Math.Min(replicationFactor, BrokerCount)),
            $"create topic '{topic}'");
    }

    /// <summary>
    /// How long the first join round of an empty classic group waits for more members before it assigns (Kafka's
    /// <c>group.initial.rebalance.delay.ms</c>; 3 s on the mock, as on Kafka).
    /// </summary>
    public void SetGroupInitialRebalanceDelay(TimeSpan delay) =>
        MockClusterNative.SetGroupInitialRebalanceDelay(Cluster, checked((int)delay.TotalMilliseconds));

    /// <summary>
    /// Takes broker <paramref name="brokerId"/> down: its connections close and new ones are refused. The mock closes
    /// the broker's listening socket and binds its port again at once (a failed bind aborts the process), so no child
    /// process may be starting meanwhile: see <see cref="SpawnGate"/>.
    /// </summary>
    public void SetBrokerDown(int brokerId = 1)
    {
        using (SpawnGate.Exclusive()) Check(MockClusterNative.BrokerSetDown(Cluster, brokerId), $"take broker {brokerId} down");
    }

    /// <summary>Brings broker <paramref name="brokerId"/> back up (listening again on its port; see <see cref="SetBrokerDown"/>).</summary>
    public void SetBrokerUp(int brokerId = 1)
    {
        using (SpawnGate.Exclusive()) Check(MockClusterNative.BrokerSetUp(Cluster, brokerId), $"bring broker {brokerId} up");
    }

    /// <summary>Delays every response of broker <paramref name="brokerId"/> by <paramref name="roundTrip"/>.</summary>
    public void SetRoundTripTime(TimeSpan roundTrip, int brokerId = 1) =>
        Check(MockClusterNative.BrokerSetRtt(Cluster, brokerId, (int)roundTrip.TotalMilliseconds), $"set broker {brokerId} round-trip time");

    /// <summary>
    /// Makes the next requests of Kafka API <paramref name="apiKey"/> (for example 0 = Produce, 8 = OffsetCommit)
    /// fail with <paramref name="errors"/>, one error per request, in order.
    /// </summary>
    public unsafe void PushRequestErrors(short apiKey, params ErrorCode[] errors)
    {
        var codes = errors.Select(e => (int)e).ToArray();
        fixed (int* p = codes)
        {
            MockClusterNative.PushRequestErrors(Cluster, apiKey, (nuint)codes.Length, p);
        }
    }

    /// <summary>Drops any injected errors still queued for <paramref name="apiKey"/>.</summary>
    public void ClearRequestErrors(short apiKey) => MockClusterNative.ClearRequestErrors(Cluster, apiKey);

    /// <summary>Starts recording every request the brokers receive, forgetting any recorded before.</summary>
    public void StartRequestTracking() => MockClusterNative.StartRequestTracking(Cluster);

    /// <summary>
    /// How many requests of each Kafka API (by key: 8 = OffsetCommit, 26 = EndTxn, 28 = TxnOffsetCommit, …) the brokers
    /// received since <see cref="StartRequestTracking"/>.
    /// </summary>
    public unsafe IReadOnlyDictionary<short, int> RequestCounts()
    {
        nuint count = 0;
        var requests = MockClusterNative.GetRequests(Cluster, &count);
        var counts = new Dictionary<short, int>();
        try
        {
            for (nuint i = 0; i < count; i++)
            {
                var key = MockClusterNative.RequestApiKey(requests[i]);
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
        }
        finally
        {
            if (requests is not null) MockClusterNative.RequestDestroyArray(requests, count);
        }
        return counts;
    }

    private nint Cluster
    {
        get
        {
            ObjectDisposedException.ThrowIf(_cluster == 0, this);
            return _cluster;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_cluster != 0) MockClusterNative.ClusterDestroy(_cluster);
            if (_client != 0) MockClusterNative.KafkaDestroy(_client);
            _cluster = 0;
            _client = 0;
        }
    }

    private static void Check(int error, string what)
    {
        if (error != 0)
            throw new InvalidOperationException(
                $"Embedded broker could not {what}: {Marshal.PtrToStringUTF8(MockClusterNative.ErrorToString(error))} ({error}).");
    }

    private static unsafe string Text(byte* nulTerminated) => Marshal.PtrToStringUTF8((nint)nulTerminated) ?? "";
}
