using System.Text;
using Drakkar.Sinks.Filesystem;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Drakkar.Observability.Logging;

/// <summary>The worker-wide fields every log line carries.</summary>
internal sealed record LogContext(string WorkerId, string ConsumerGroup, string ClusterName = "");

/// <summary>
/// Where log lines go: one writer shared by all loggers, serialized so lines never interleave. A log file is opened
/// with <c>O_APPEND</c> and each line goes out in one <c>write(2)</c>, so workers sharing one file (or one worker
/// opening it twice) append whole lines after each other instead of overwriting each other's.
/// </summary>
internal sealed class LogSink : IDisposable
{
    private readonly TextWriter? _writer;
    private readonly bool _ownsWriter;
    private readonly SafeFileHandle? _file;
    private readonly string _path = "";
    private readonly Lock _gate = new();

    public LogSink(TextWriter writer, bool ownsWriter)
    {
        _writer = writer;
        _ownsWriter = ownsWriter;
    }

    private LogSink(SafeFileHandle file, string path)
    {
        _file = file;
        _path = path;
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
                return new LogSink(BeneathFile.OpenForAppend(path), path);
        }
    }

    public void WriteLine(string line)
    {
        lock (_gate)
        {
            if (_file is null)
            {
                _writer!.WriteLine(line);
                return;
            }
            var bytes = Encoding.UTF8.GetBytes(line + "\n");
            BeneathFile.AppendAll(_file, bytes, _path);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _file?.Dispose();
            _writer?.Flush();
            if (_ownsWriter) _writer?.Dispose();
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
