using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Drakkar.IntegrationTests.Support;

/// <summary>One log line a worker wrote, with its monotonic <see cref="Stopwatch"/> timestamp.</summary>
internal sealed record CapturedLog(long Timestamp, LogLevel Level, string Category, string Message, Exception? Exception);

/// <summary>A logger factory that keeps every line a worker logs, for tests that assert on what the worker said.</summary>
internal sealed class LogCapture : ILoggerFactory, ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLog> _lines = new();

    public IReadOnlyCollection<CapturedLog> Lines => _lines;

    /// <summary>The lines whose message contains <paramref name="text"/>, oldest first.</summary>
    public CapturedLog[] Containing(string text) => [.. _lines.Where(l => l.Message.Contains(text, StringComparison.Ordinal))];

    /// <summary>Every line as "level message", for a failure message.</summary>
    public string Text() => string.Join("\n", _lines.Select(l => $"{l.Level} {l.Message}{(l.Exception is null ? "" : $" [{l.Exception.GetType().Name}: {l.Exception.Message}]")}"));

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("LogCapture is its own only provider");

    public void Dispose()
    {
    }

    private sealed class Logger(LogCapture capture, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            capture._lines.Enqueue(new CapturedLog(Stopwatch.GetTimestamp(), logLevel, category, formatter(state, exception), exception));
    }
}
