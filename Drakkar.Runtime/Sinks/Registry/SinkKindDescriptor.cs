namespace Drakkar.Sinks;

/// <summary>
/// Everything the runtime knows about one built-in sink kind, in one place: its name in configuration (also the
/// <c>sink_type</c> metric label), the payload type and <see cref="SinkKind"/> that target it, its configuration
/// section (<c>sinks.{name}.*</c>), how many batches an instance delivers at once, and the factory that builds an
/// instance. A kind whose implementation ships in its own package has no factory here; the package supplies it with
/// <see cref="SinkRegistry.Register(SinkKind, SinkFactory)"/>.
/// </summary>
/// <param name="Name">The key under <c>sinks</c>.</param>
/// <param name="Kind">The payload kind.</param>
/// <param name="PayloadType">The payload record whose <c>Of</c> factories target this kind (the analyzer's list must agree).</param>
/// <param name="Instances">The configured instances of this kind, by name.</param>
/// <param name="Factory">Builds one instance; null when a separate package provides it.</param>
/// <param name="DeliveriesInFlight">Batches one instance delivers concurrently.</param>
/// <param name="Package">For a kind without a factory: the package and the registration call that provide it.</param>
internal sealed record SinkKindDescriptor(
    string Name,
    SinkKind Kind,
    Type PayloadType,
    Func<SinksConfig, IEnumerable<KeyValuePair<string, SinkInstanceConfig>>> Instances,
    SinkFactory? Factory,
    int DeliveriesInFlight = 1,
    (string Name, string Registration)? Package = null)
{
    public string ConfigPath(string instance) => $"sinks.{Name}.{instance}";

    public SinkInstanceConfig? Instance(SinksConfig sinks, string name) =>
        Instances(sinks).FirstOrDefault(i => i.Key == name).Value;
}
