using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Drakkar.Observability.Logging;

/// <summary>
/// Structured logs (SPEC X3): one JSON object per line with timestamp, level, message, worker id, consumer group
/// and every scope value in force (partition, offset, task, sink), or a compact human format.
/// </summary>
internal sealed class DrakkarLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    private readonly LogSink _sink;
    private readonly LogContext _context;
    private readonly LogFormat _format;
    private readonly LogLevel _minimum;
    private readonly Sinks.SinkSecretMasker _secrets;
    private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

    // secrets: the worker's configured secrets, masked wherever they appear verbatim; null masks by shape only.
    internal DrakkarLoggerProvider(LogSink sink, LogContext context, LogFormat format, LogLevel minimum, Sinks.SinkSecretMasker? secrets = null)
    {
        _secrets = secrets ?? new Sinks.SinkSecretMasker();
        _sink = sink;
        _context = context;
        _format = format;
        _minimum = minimum;
    }

    /// <summary>Creates a logger factory writing where <paramref name="config"/> says.</summary>
    public static ILoggerFactory CreateFactory(LoggingConfig config, LogContext context, Sinks.SinkSecretMasker? secrets = null)
    {
        // Built directly: LoggerFactory.Create would assemble a dependency-injection container for the same result.
        return new LoggerFactory([Create(config, context, secrets: secrets)], new LoggerFilterOptions { MinLevel = LogSink.ParseLevel(config.Level) });
    }

    /// <summary>A provider writing where <paramref name="config"/> says, at <c>logging.level</c> and above.</summary>
    public static DrakkarLoggerProvider Create(LoggingConfig config, LogContext context, bool omitHostStartFailure = false, Sinks.SinkSecretMasker? secrets = null) =>
        new(LogSink.Open(config.Output, context), context, config.Format, LogSink.ParseLevel(config.Level), secrets) { OmitHostStartFailure = omitHostStartFailure };

    /// <summary>
    /// Leaves out the host's own "Hosting failed to start" line (with the exception's stack trace): set when
    /// <see cref="DrakkarApp"/> runs the host, which reports a failed start itself, once.
    /// </summary>
    public bool OmitHostStartFailure { get; init; }

    public ILogger CreateLogger(string categoryName) => new DrakkarLogger(this, categoryName);

    private bool Omits(string category, EventId eventId) =>
        OmitHostStartFailure && eventId.Name == "HostedServiceStartupFaulted" && category == "Microsoft.Extensions.Hosting.Internal.Host";

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose() => _sink.Dispose();

    private void Write<TState>(string category, LogLevel level, EventId eventId, TState state, Exception? exception,
        Func<TState, Exception?, string> formatter)
    {
        // Masked here, for every line: a value a call site forgot to mask (a task's stderr quoting the DSN it failed on)
        // must not reach the log with its password.
        var message = Mask(formatter(state, exception));
        var line = _format == LogFormat.Json
            ? JsonLine(category, level, eventId, message, state, exception)
            : ConsoleLine(category, level, message, state, exception);
        _sink.WriteLine(line);
    }

    private string JsonLine<TState>(string category, LogLevel level, EventId eventId, string message, TState state, Exception? exception)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        // As the sinks write JSON: a quote or an apostrophe in a message stays as it is (grep finds it), not \u0027.
        using (var json = new Utf8JsonWriter(buffer, Serialization.JsonOutput.Compact))
        {
            json.WriteStartObject();
            json.WriteString("timestamp", DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
            json.WriteString("level", LevelName(level));
            json.WriteString("message", message);
            json.WriteString("logger", category);
            json.WriteString("worker_id", _context.WorkerId);
            json.WriteString("consumer_group", _context.ConsumerGroup);
            // The event ids operations.md lists (the executor's 3001-3011, …), for filtering by event rather than text.
            if (eventId.Id != 0) json.WriteNumber("event_id", eventId.Id);
            var written = new HashSet<string>(StringComparer.Ordinal) { "timestamp", "level", "message", "logger", "worker_id", "consumer_group", "event_id" };
            ForEachField(state, (key, value) =>
            {
                if (!written.Add(key)) return;
                WriteValue(json, key, value);
            });
            if (exception is not null) json.WriteString("exception", Mask(exception.ToString()));
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private string ConsoleLine<TState>(string category, LogLevel level, string message, TState state, Exception? exception)
    {
        var text = new StringBuilder(128)
            .Append(DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)).Append(' ')
            .Append(LevelName(level).ToUpperInvariant().PadRight(8))
            .Append(message);
        // The message already shows its own values (a long reason would otherwise be printed twice): only the scopes'
        // fields are added, as key=value. JSON lines carry every field.
        ForEachField(state, (key, value) => text.Append(' ').Append(key).Append('=').Append(Mask(Convert.ToString(value, CultureInfo.InvariantCulture))),
            includeMessageFields: false);
        if (exception is not null) text.AppendLine().Append(Mask(exception.ToString()));
        return text.ToString();
    }

    /// <summary>Scope values first (outer to inner), then the message's own template values.</summary>
    private void ForEachField<TState>(TState state, Action<string, object?> visit, bool includeMessageFields = true)
    {
        _scopes.ForEachScope(static (scope, visit) =>
        {
            if (scope is IEnumerable<KeyValuePair<string, object?>> pairs)
            {
                // snake_case as the message's own values: the host's activity scope names its fields SpanId, TraceId, ParentId.
                foreach (var (key, value) in pairs)
                    if (key != "{OriginalFormat}") visit(SnakeCase(key), value);
            }
        }, visit);
        if (includeMessageFields && state is IEnumerable<KeyValuePair<string, object?>> fields)
        {
            foreach (var (key, value) in fields)
                if (key != "{OriginalFormat}") visit(SnakeCase(key), value);
        }
    }

    /// <summary>Credentials by their shape, and the worker's configured secrets wherever they appear.</summary>
    private string Mask(string? text) => _secrets.Apply(text);

    private void WriteValue(Utf8JsonWriter json, string key, object? value)
    {
        switch (value)
        {
            case null: json.WriteNull(key); break;
            case bool b: json.WriteBoolean(key, b); break;
            case int i: json.WriteNumber(key, i); break;
            case long l: json.WriteNumber(key, l); break;
            case double d: json.WriteNumber(key, d); break;
            default: json.WriteString(key, Mask(Convert.ToString(value, CultureInfo.InvariantCulture))); break;
        }
    }

    private static string SnakeCase(string name)
    {
        if (name.All(c => !char.IsUpper(c))) return name;
        var text = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c))
            {
                if (i > 0 && (char.IsLower(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1])))) text.Append('_');
                text.Append(char.ToLowerInvariant(c));
            }
            else text.Append(c);
        }
        return text.ToString();
    }

    private static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warning",
        LogLevel.Error => "error",
        LogLevel.Critical => "critical",
        _ => "none",
    };

    private sealed class DrakkarLogger(DrakkarLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => provider._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel >= provider._minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel) && !provider.Omits(category, eventId)) provider.Write(category, logLevel, eventId, state, exception, formatter);
        }
    }
}
