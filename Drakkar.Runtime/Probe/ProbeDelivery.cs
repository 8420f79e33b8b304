using System.Collections.Concurrent;
using Drakkar.Pipeline;

namespace Drakkar.Probe;

/// <summary>A payload a sink instance would have received, with the hook call and the source offsets it came from.</summary>
internal sealed record ProbedPayload(string Hook, int Partition, IReadOnlyList<long> Offsets, SinkPayload Payload)
{
    /// <summary>Why the worker would dead-letter it (no JSON form, refused by its sink, or with its group), or null.</summary>
    public string? Refusal { get; init; }

    /// <summary>Why its data has no JSON form (NaN, an object that refers to itself); null when it has one. Worked out once.</summary>
    public string? JsonProblem { get; } = Problem(() => Payload.Data.ToJsonBytes());

    /// <summary>
    /// Why its sink cannot write it, in the report's words; null when it can. Each sink writes its own form: PostgreSQL
    /// typed columns (a NaN double is a value there; only nested members become JSON), MongoDB BSON (NaN too), the
    /// other sinks and plugins JSON.
    /// </summary>
    public string? FormProblem => Payload switch
    {
        PostgresPayload => Problem(() => Payload.Data.WriteRow(new Sinks.Postgres.ParameterRowWriter(new Npgsql.NpgsqlCommand().Parameters, Payload.Data.Columns)))
            is { } row ? $"cannot be written as a PostgreSQL row, so the sink would dead-letter it: {row}" : null,
        MongoPayload => Problem(() => Payload.Data.WriteBson(new BsonWriter()))
            is { } bson ? $"cannot be written as BSON, so the sink would dead-letter it: {bson}" : null,
        _ => JsonProblem is { } json ? $"cannot be written as JSON, so the sink would dead-letter it: {json}" : null,
    };

    private static string? Problem(Action write)
    {
        try
        {
            write();
            return null;
        }
        catch (Exception e) when (PayloadData.IsUnwritable(e))
        {
            return e.Message;
        }
    }
}

/// <summary>Source messages that would have gone to the DLQ (for example <c>Arrange</c> threw), and why.</summary>
internal sealed record ProbedDeadLetter(int Partition, IReadOnlyList<long> Offsets, string Error);

/// <summary>
/// The delivery side of a probe: takes the payloads the hooks return, records them by the sink instance they route
/// to, and settles them at once. Nothing is connected, delivered, dead-lettered or committed.
/// </summary>
internal sealed class ProbeDelivery(ProbeRouting routing) : IPayloadDelivery
{
    private readonly ConcurrentQueue<(string Kind, string Instance, ProbedPayload Payload)> _routed = new();
    private readonly ConcurrentQueue<(ProbedPayload Payload, string Error)> _unroutable = new();
    private readonly ConcurrentQueue<ProbedDeadLetter> _deadLetters = new();

    public IEnumerable<(string Kind, string Instance, ProbedPayload Payload)> Routed => _routed;
    public IEnumerable<(ProbedPayload Payload, string Error)> Unroutable => _unroutable;
    public IEnumerable<ProbedDeadLetter> DeadLetters => _deadLetters;

    public ValueTask DeliverAsync(CollectResult result, DeliveryOrigin origin, CancellationToken cancellationToken)
    {
        Record(result, origin);
        return ValueTask.CompletedTask;
    }

    public void Submit(CollectResult result, DeliveryOrigin origin, CancellationToken abandoned, Action<bool, object?> settled, object? state)
    {
        Record(result, origin);
        settled(true, state);
    }

    public IReadOnlyDictionary<(string Topic, int Partition), string> BlockedPartitions { get; } = new Dictionary<(string, int), string>();

    public long InFlightPayloads => 0;

    public bool HoldingForOutage => false;

    public long MaxInFlightPayloads => long.MaxValue;

    public ValueTask DeadLetterAsync(DeliveryOrigin origin, string error, CancellationToken cancellationToken)
    {
        _deadLetters.Enqueue(new ProbedDeadLetter(origin.Partition, [.. origin.Offsets], error));
        return ValueTask.CompletedTask;
    }

    public Task FlushAsync(string topic, int partition, CancellationToken cancellationToken) => Task.CompletedTask;

    public void Discard(string topic, int partition)
    {
    }

    public Sinks.Kafka.KafkaTransaction? Transaction => null;

    private void Record(CollectResult result, DeliveryOrigin origin)
    {
        var routed = new List<(string Kind, string Instance, ProbedPayload Payload)>();
        foreach (var payload in result.All())
        {
            var probed = new ProbedPayload(origin.Hook, origin.Partition, [.. origin.Offsets], payload);
            if (routing.TryRoute(payload, out var kind, out var instance, out var error))
                routed.Add((kind, instance, probed with { Refusal = Refusal(probed, instance) }));
            else _unroutable.Enqueue((probed, error));
        }
        // The payloads of one hook call for one instance are a group, dead-lettered together: a refused payload takes
        // its group's other payloads into the DLQ with it.
        foreach (var group in routed.GroupBy(r => (r.Kind, r.Instance)))
        {
            var members = group.ToList();
            var refused = members.FindIndex(m => m.Payload.Refusal is not null);
            foreach (var (kind, instance, probed) in members)
            {
                _routed.Enqueue((kind, instance, refused < 0 || probed.Refusal is not null ? probed : probed with
                {
                    Refusal = $"the worker would dead-letter it with the rest of its group (this hook call's {members.Count} payloads for " +
                        $"{kind} '{instance}'), as payload {refused + 1} of them is refused; a sink that writes payloads one at a time " +
                        "(Kafka, MongoDB, Redis) may still write this one",
                }));
            }
        }
    }

    /// <summary>Why the worker would dead-letter the payload (its sink cannot write it, or refuses it), as the report says it; null when it would not.</summary>
    private string? Refusal(ProbedPayload probed, string instance) =>
        probed.FormProblem
        ?? (routing.Refusal(probed.Payload, instance) is { } refusal ? $"the sink would refuse it and the worker dead-letter it: {refusal}" : null);
}

/// <summary>Which configured sink instance a payload goes to, by the rules the sink manager applies (SPEC S1, S2).</summary>
internal sealed class ProbeRouting(SinksConfig sinks)
{
    public bool TryRoute(SinkPayload payload, out string kind, out string instance, out string error)
    {
        var customKind = payload is CustomPayload custom ? custom.CustomKind : null;
        kind = customKind ?? SinkKinds.ConfigName(payload.Kind);
        string[] configured = customKind is null
            ? [.. SinkKinds.Of(payload.Kind).Instances(sinks).Select(e => e.Key)]
            : sinks.Custom.TryGetValue(customKind, out var plugins) ? [.. plugins.Keys] : [];
        instance = payload.Sink.Length > 0 ? payload.Sink : configured.Length == 1 ? configured[0] : "";
        error = instance.Length == 0
            ? configured.Length == 0
                ? $"a {payload.Data.TypeName} payload targets the {kind} sink, but none is configured"
                : $"{configured.Length} {kind} sinks are configured ({string.Join(", ", configured)}) but a {payload.Data.TypeName} payload names none"
            : configured.Contains(instance) ? "" : $"no {kind} sink named '{instance}' is configured";
        return error.Length == 0;
    }

    /// <summary>
    /// Why the built-in sink <paramref name="instance"/> would refuse the payload, by the sink's own checks: an empty
    /// Redis key, an invalid table, column or collection name, a file path that is empty, escapes base_path or has no
    /// parent directory there. Null when it would take it (a destination may still refuse it: a constraint, a 4xx).
    /// </summary>
    public string? Refusal(SinkPayload payload, string instance)
    {
        try
        {
            switch (payload)
            {
                case RedisPayload redis:
                    return Sinks.Redis.RedisSink.KeyRefusal(redis) is { } key ? $"{payload.Data.TypeName} {key}" : null;
                case MongoPayload mongo:
                    return mongo.CollectionRefusal();
                case PostgresPayload row:
                    Sinks.Postgres.PostgresSink.QuotedIdentifiers(row);
                    if (sinks.Postgres.TryGetValue(instance, out var postgres) && postgres.Mode == PostgresWriteMode.Upsert)
                        Sinks.Postgres.PostgresSink.CheckConflictKeys(postgres.OnConflict, row);
                    return null;
                case FilePayload file when sinks.Filesystem.TryGetValue(instance, out var files):
                    var components = Sinks.Filesystem.BeneathFile.Components(file.Path, files.BasePath);
                    var basePath = Path.GetFullPath(files.BasePath);
                    // Read only: the sink creates the file but never a directory, so a missing parent is its refusal.
                    return Directory.Exists(basePath) && !Directory.Exists(Path.Combine([basePath, .. components[..^1]]))
                        ? Sinks.Filesystem.BeneathFile.MissingParent(file.Path, files.BasePath).Message
                        : null;
                default:
                    return null;
            }
        }
        catch (Sinks.SinkDeliveryException refused)
        {
            return refused.Message;
        }
    }
}
