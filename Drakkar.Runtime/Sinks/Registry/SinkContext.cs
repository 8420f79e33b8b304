using Microsoft.Extensions.Logging;

namespace Drakkar.Sinks;

/// <summary>What a <see cref="SinkFactory"/> receives for one configured instance of a built-in kind (<c>sinks.{kind}.{name}</c>).</summary>
public sealed class SinkContext
{
    internal SinkContext(string kind, string name, SinkInstanceConfig settings, DrakkarConfig config, ILoggerFactory loggers,
        SinkSecretMasker masker)
    {
        Kind = kind;
        Name = name;
        Settings = settings;
        Config = config;
        Loggers = loggers;
        Masker = masker;
    }

    /// <summary>The kind as configured: <c>mongo</c>, …</summary>
    public string Kind { get; }

    /// <summary>The instance name.</summary>
    public string Name { get; }

    /// <summary>Where the instance is configured, for error messages: <c>sinks.{kind}.{name}</c>.</summary>
    public string ConfigPath => $"sinks.{Kind}.{Name}";

    /// <summary>The instance's settings, of the kind's own type (for <c>mongo</c>, a <see cref="MongoSinkConfig"/>).</summary>
    public SinkInstanceConfig Settings { get; }

    /// <summary>The whole worker configuration.</summary>
    public DrakkarConfig Config { get; }

    /// <summary>For the sink's own log category.</summary>
    public ILoggerFactory Loggers { get; }

    internal SinkSecretMasker Masker { get; }

    /// <summary>
    /// Masks the password of <paramref name="urlOrDsn"/> (<c>scheme://user:password@host</c> or <c>Password=…</c>)
    /// wherever it appears in the worker's errors, logs and dead letters from now on, even where a driver echoes it
    /// without a recognisable shape.
    /// </summary>
    public void MaskCredentialsOf(string? urlOrDsn) => Masker.AddCredentialsOf(urlOrDsn);
}

/// <summary>Creates one instance of a built-in sink kind whose implementation ships in its own package.</summary>
public delegate ISink SinkFactory(SinkContext context);
