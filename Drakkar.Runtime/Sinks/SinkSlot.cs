using Drakkar.Observability.Metrics;

namespace Drakkar.Sinks;

/// <summary>Identifies a sink instance: built-in kind (or plugin kind) plus instance name.</summary>
internal readonly record struct SinkKey(SinkKind Kind, string? CustomKind, string Name)
{
    /// <summary>The kind as configured and as the <c>sink_type</c> metric label: <c>kafka</c>, … or the plugin kind.</summary>
    public string KindName => CustomKind ?? SinkKinds.ConfigName(Kind);

    public string ConfigPath => ConfigPathOf(Kind, CustomKind, Name);

    public override string ToString() => $"{KindName}/{Name}";

    public static string ConfigPathOf(SinkKind kind, string? customKind, string name) =>
        kind == SinkKind.Custom ? $"sinks.{SinkKinds.PluginSection}.{customKind}.{name}" : SinkKinds.Of(kind).ConfigPath(name);

    public static string KindNameOf(SinkPayload payload) =>
        payload is CustomPayload custom ? custom.CustomKind : SinkKinds.ConfigName(payload.Kind);

    /// <summary>A sink whose <see cref="ISink.Kind"/> is a built-in name is that kind; any other name is a plugin kind.</summary>
    public static SinkKey Of(ISink sink) =>
        BuiltInKind(sink.Kind) is { } builtIn ? new SinkKey(builtIn, null, sink.Name) : new SinkKey(SinkKind.Custom, sink.Kind, sink.Name);

    public static SinkKind? BuiltInKind(string name) => SinkKinds.Named(name)?.Kind;
}

/// <summary>A sink with the state the manager keeps for it: breaker, counters and its metric cells.</summary>
internal sealed class SinkSlot
{
    public SinkSlot(ISink sink, SinkKey key, SinkManagerOptions options, DrakkarMetrics metrics)
    {
        Sink = sink;
        Key = key;
        string[] labels = [key.KindName, key.Name];
        // A probe is one attempt (plus at most a few fast retries and the handler's decision): twice the attempt
        // bound is ample before its slot is presumed lost.
        var probeLease = 2 * options.Batching(key.KindName, key.Name).AttemptTimeout;
        Breaker = new CircuitBreaker(options.CircuitBreaker, options.Time, probeLease, metrics.SinkCircuitOpen.WithLabels(labels),
            metrics.SinkCircuitTrips.WithLabels(labels));
        PayloadsDelivered = metrics.SinkPayloadsDelivered.WithLabels(labels);
        Errors = metrics.SinkDeliverErrors.WithLabels(labels);
        Retries = metrics.SinkDeliveryRetries.WithLabels(labels);
        Skipped = metrics.SinkDeliveriesSkipped.WithLabels(labels);
        DeadLettered = metrics.SinkDlqMessages.WithLabels(labels);
    }

    public ISink Sink { get; }
    public SinkKey Key { get; }
    public CircuitBreaker Breaker { get; }
    public SinkCounters Counters { get; } = new();
    public MetricCell PayloadsDelivered { get; }
    public MetricCell Errors { get; }
    public MetricCell Retries { get; }
    public MetricCell Skipped { get; }
    public MetricCell DeadLettered { get; }

    /// <summary>Set by the manager once <see cref="ISink.ConnectAsync"/> succeeded, cleared when it closes the sink.</summary>
    public volatile bool Connected;
}
