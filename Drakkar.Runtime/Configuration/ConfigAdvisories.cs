namespace Drakkar.Configuration;

/// <summary>
/// Settings that are valid each on its own but have no effect in the combination given: not errors (a file may be
/// shared by workers on either protocol), but said as warnings, by <c>check-config</c> and at start, so that no key is
/// silently ignored.
/// </summary>
internal static class ConfigAdvisories
{
    public static IEnumerable<string> Of(DrakkarConfig config)
    {
        var kafka = config.Kafka;
        if (!kafka.UsesConsumerProtocol) yield break;
        // Under KIP-848 the broker owns the session and the heartbeat (group.consumer.*); the client is not given them.
        var defaults = new KafkaConfig();
        if (kafka.SessionTimeoutMs != defaults.SessionTimeoutMs)
            yield return $"kafka.session_timeout_ms ({kafka.SessionTimeoutMs}) has no effect under group_protocol: consumer; the broker's " +
                "group.consumer.session.timeout.ms applies";
        if (kafka.HeartbeatIntervalMs != defaults.HeartbeatIntervalMs)
            yield return $"kafka.heartbeat_interval_ms ({kafka.HeartbeatIntervalMs}) has no effect under group_protocol: consumer; the broker's " +
                "group.consumer.heartbeat.interval.ms applies";
    }
}
