using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Drakkar.Observability.Tracing;

/// <summary>
/// The worker's spans, on the <c>Drakkar</c> <see cref="ActivitySource"/> (SPEC X6): a <c>message</c> span per source
/// record (child of the record's W3C <c>traceparent</c> header, if any), a <c>task</c> span per executor task (child of
/// its first message, linked to the others it serves) and a <c>delivery</c> span per hook call's payloads for one sink
/// instance (child of the span whose hook returned them). Kafka sink records carry their delivery span as
/// <c>traceparent</c>. See docs/operations.md, "Traces".
/// </summary>
/// <remarks>
/// Without a listener (no exporter configured) <see cref="ActivitySource.HasListeners"/> is false and nothing here
/// allocates: every method returns null or does nothing, so the hot path pays one volatile read per call.
/// </remarks>
internal static class PipelineTracing
{
    public const string SourceName = "Drakkar";
    public const string TraceParentHeader = "traceparent";
    public const string TraceStateHeader = "tracestate";

    public static readonly ActivitySource Source = new(SourceName, Hosting.DrakkarVersion.Text);

    /// <summary>True when some listener (an exporter) wants spans.</summary>
    public static bool IsOn => Source.HasListeners();

    /// <summary>
    /// Starts the span of a consumed record, from consumption until the record is settled. It is started and stopped
    /// on threads that go on doing other work, so it never becomes <see cref="Activity.Current"/> there.
    /// </summary>
    public static Activity? StartMessage(SourceMessage message)
    {
        if (!Source.HasListeners()) return null;
        return Detached(() => Source.StartActivity("message", ActivityKind.Consumer, RemoteParent(message.Headers),
        [
            new("messaging.system", "kafka"),
            new("messaging.operation.type", "process"),
            new("messaging.destination.name", message.Topic),
            new("messaging.destination.partition.id", message.Partition.ToString(CultureInfo.InvariantCulture)),
            new("messaging.kafka.offset", message.Offset),
        ]));
    }

    /// <summary>
    /// Starts the span of a task, current for the rest of the caller's async flow (so spans the handler starts in
    /// its hooks nest under it). <paramref name="messages"/> are the spans of the messages the task serves.
    /// </summary>
    public static Activity? StartTask(ExecutorTask task, IEnumerable<Activity?> messages)
    {
        if (!Source.HasListeners()) return null;
        ActivityContext parent = default;
        List<ActivityLink>? links = null;
        foreach (var message in messages)
        {
            if (message is null) continue;
            if (parent == default) parent = message.Context;
            else (links ??= []).Add(new ActivityLink(message.Context));
        }
        var span = Source.StartActivity("task", ActivityKind.Internal, parent, [new("drakkar.task.id", task.TaskId)], links);
        if (task.ParentTaskId is { } parentTask) span?.SetTag("drakkar.task.parent_id", parentTask);
        return span;
    }

    /// <summary>Starts the span of one hook call's payloads for one sink instance, from hand-over until settled.</summary>
    public static Activity? StartDelivery(string sinkKind, string sinkName, int payloads, ActivityContext parent)
    {
        if (!Source.HasListeners()) return null;
        return Detached(() => Source.StartActivity("delivery", ActivityKind.Producer, parent,
        [
            new("drakkar.sink.kind", sinkKind),
            new("drakkar.sink.name", sinkName),
            new("drakkar.payloads", payloads),
        ]));
    }

    /// <summary>Marks <paramref name="span"/> as failed with <paramref name="error"/> (a null span is ignored).</summary>
    public static void Fail(Activity? span, string error) => span?.SetStatus(ActivityStatusCode.Error, error);

    /// <summary>Ends a span started with <see cref="StartMessage"/> or <see cref="StartDelivery"/>, leaving <see cref="Activity.Current"/> as it was.</summary>
    public static void Stop(Activity? span)
    {
        if (span is null) return;
        var current = Activity.Current;
        span.Stop();
        if (!ReferenceEquals(current, span)) Activity.Current = current;
    }

    /// <summary>The W3C <c>traceparent</c> value naming <paramref name="context"/> as the parent.</summary>
    public static byte[] TraceParent(ActivityContext context) => Encoding.ASCII.GetBytes(
        $"00-{context.TraceId.ToHexString()}-{context.SpanId.ToHexString()}-{((context.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? "01" : "00")}");

    /// <summary>The parent a record's <c>traceparent</c> (and <c>tracestate</c>) header names; default when it has none or it is malformed.</summary>
    public static ActivityContext RemoteParent(IReadOnlyList<KeyValuePair<string, byte[]>> headers)
    {
        string? traceParent = null, traceState = null;
        foreach (var (name, value) in headers)
        {
            if (name.Equals(TraceParentHeader, StringComparison.OrdinalIgnoreCase)) traceParent = Encoding.UTF8.GetString(value);
            else if (name.Equals(TraceStateHeader, StringComparison.OrdinalIgnoreCase)) traceState = Encoding.UTF8.GetString(value);
        }
        return traceParent is not null && ActivityContext.TryParse(traceParent, traceState, isRemote: true, out var context) ? context : default;
    }

    private static Activity? Detached(Func<Activity?> start)
    {
        var current = Activity.Current;
        var span = start();
        if (span is not null) Activity.Current = current;
        return span;
    }
}
