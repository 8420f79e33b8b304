using Microsoft.Extensions.Logging;

namespace Drakkar.Observability.Logging;

/// <summary>The worker-wide fields every log line carries.</summary>
public sealed record LogContext(string WorkerId, string ConsumerGroup, string ClusterName = "");

/// <summary>Where log lines go: one writer shared by all loggers, serialized so lines never interleave.</summary>
internal sealed class LogSink : IDisposable
{
    private readonly TextWriter _writer;
    private readonly bool _ownsWriter;
    private readonly Lock _gate = new();

    public LogSink(TextWriter writer, bool ownsWriter)
    {
        _writer = writer;
        _ownsWriter = ownsWriter;
    }

    /// <summary><c>stderr</c>, <c>stdout</c>, or a file path (appended; <c>{worker_id}</c>/<c>{cluster_name}</c> expanded).</summary>
    public static LogSink Open(string output, LogContext context)
    {
        switch (output)
        {
            case "" or "stderr":
                return new LogSink(Console.Error, ownsWriter: false);
            case "stdout":
                return new LogSink(Console.Out, ownsWriter: false);
            default:
                var path = output.Replace("{worker_id}", context.WorkerId, StringComparison.Ordinal)
                    .Replace("{cluster_name}", context.ClusterName, StringComparison.Ordinal);
                var directory = Path.GetDirectoryName(Path.GetFullPath(path));
                if (directory is not null) Directory.CreateDirectory(directory);
                var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
                return new LogSink(new StreamWriter(stream) { AutoFlush = true }, ownsWriter: true);
        }
    }

    public void WriteLine(string line)
    {
        lock (_gate)
        {
            _writer.WriteLine(line);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _writer.Flush();
            if (_ownsWriter) _writer.Dispose();
        }
    }

    public static LogLevel ParseLevel(string level) => level.Trim().ToUpperInvariant() switch
    {
        "TRACE" => LogLevel.Trace,
        "DEBUG" => LogLevel.Debug,
        "INFO" or "INFORMATION" => LogLevel.Information,
        "WARN" or "WARNING" => LogLevel.Warning,
        "ERROR" => LogLevel.Error,
        "CRITICAL" or "FATAL" => LogLevel.Critical,
        "NONE" or "OFF" => LogLevel.None,
        _ => throw new ArgumentException($"logging.level: unknown level '{level}' (use DEBUG, INFO, WARNING, ERROR or CRITICAL)"),
    };
}
