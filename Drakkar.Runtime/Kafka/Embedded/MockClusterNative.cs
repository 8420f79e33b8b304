using System.Runtime.InteropServices;

namespace Drakkar.Kafka.Embedded;

/// <summary>
/// The slice of librdkafka's C API that runs its in-process Kafka-protocol mock cluster. "librdkafka" resolves,
/// through <see cref="KafkaNativeLibrary"/>'s resolver, to the very library handle Confluent.Kafka binds (one
/// librdkafka per process: the package's <c>centos8-librdkafka.so</c> on Debian 12). Call
/// <see cref="KafkaNativeLibrary.EnsureLoaded"/> before the first call.
/// </summary>
internal static partial class MockClusterNative
{
    private const string Library = KafkaNativeLibrary.ImportName;

    public const int ProducerType = 0;

    [LibraryImport(Library, EntryPoint = "rd_kafka_conf_new")]
    public static partial nint ConfNew();

    [LibraryImport(Library, EntryPoint = "rd_kafka_conf_set", StringMarshalling = StringMarshalling.Utf8)]
    public static unsafe partial int ConfSet(nint conf, string name, string value, byte* errorText, nuint errorTextSize);

    [LibraryImport(Library, EntryPoint = "rd_kafka_conf_destroy")]
    public static partial void ConfDestroy(nint conf);

    [LibraryImport(Library, EntryPoint = "rd_kafka_new")]
    public static unsafe partial nint KafkaNew(int type, nint conf, byte* errorText, nuint errorTextSize);

    [LibraryImport(Library, EntryPoint = "rd_kafka_destroy")]
    public static partial void KafkaDestroy(nint handle);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_cluster_new")]
    public static partial nint ClusterNew(nint handle, int brokerCount);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_cluster_destroy")]
    public static partial void ClusterDestroy(nint cluster);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_cluster_bootstraps")]
    public static partial nint ClusterBootstraps(nint cluster);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_topic_create", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int TopicCreate(nint cluster, string topic, int partitionCount, int replicationFactor);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_set_group_consumer_heartbeat_interval_ms")]
    public static partial void SetGroupConsumerHeartbeatInterval(nint cluster, int intervalMs);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_group_initial_rebalance_delay_ms")]
    public static partial void SetGroupInitialRebalanceDelay(nint cluster, int delayMs);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_broker_set_down")]
    public static partial int BrokerSetDown(nint cluster, int brokerId);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_broker_set_up")]
    public static partial int BrokerSetUp(nint cluster, int brokerId);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_broker_set_rtt")]
    public static partial int BrokerSetRtt(nint cluster, int brokerId, int rttMs);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_push_request_errors_array")]
    public static unsafe partial void PushRequestErrors(nint cluster, short apiKey, nuint count, int* errors);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_clear_request_errors")]
    public static partial void ClearRequestErrors(nint cluster, short apiKey);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_start_request_tracking")]
    public static partial void StartRequestTracking(nint cluster);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_get_requests")]
    public static unsafe partial nint* GetRequests(nint cluster, nuint* count);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_request_api_key")]
    public static partial short RequestApiKey(nint request);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_request_destroy_array")]
    public static unsafe partial void RequestDestroyArray(nint* requests, nuint count);

    [LibraryImport(Library, EntryPoint = "rd_kafka_err2str")]
    public static partial nint ErrorToString(int error);
}
