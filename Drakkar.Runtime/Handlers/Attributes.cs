namespace Drakkar;

/// <summary>
/// Marks a partial record or class as payload data or typed input. The source generator implements
/// <see cref="IPayload{TSelf}"/> for it: JSON writer and reader, BSON writer and PostgreSQL row binder.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class PayloadAttribute : Attribute;

/// <summary>
/// Declares a sink instance the handler routes to. Repeat it for each instance. Every declared sink must be
/// configured (<c>sinks.{kind}.{name}</c>), or the worker refuses to start.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class SinkAttribute : Attribute
{
    /// <summary>A built-in sink instance.</summary>
    public SinkAttribute(SinkKind kind, string name)
    {
        Kind = kind;
        Name = name;
    }

    /// <summary>A plugin sink instance of kind <paramref name="customKind"/> (<c>sinks.custom.{customKind}.{name}</c>).</summary>
    public SinkAttribute(string customKind, string name)
    {
        Kind = SinkKind.Custom;
        CustomKind = customKind;
        Name = name;
    }

    public SinkKind Kind { get; }
    public string? CustomKind { get; }
    public string Name { get; }
}

/// <summary>What a periodic method's failure does to its schedule.</summary>
public enum PeriodicOnError
{
    /// <summary>Log the error and run again after the interval.</summary>
    Continue,
    /// <summary>Log the error and stop running this method.</summary>
    Stop,
}

/// <summary>
/// Runs a handler method <c>ValueTask M(CancellationToken)</c> (or <c>Task</c>) every <see cref="Seconds"/> after
/// <c>OnReady</c>, never overlapping itself. Registration is generated at compile time.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class PeriodicAttribute(double seconds) : Attribute
{
    public double Seconds { get; } = seconds;
    public PeriodicOnError OnError { get; init; } = PeriodicOnError.Continue;
}
