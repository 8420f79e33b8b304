using Drakkar.Observability.Logging;
using Microsoft.Extensions.Logging;

namespace Drakkar.Runtime.Tests.Observability;

public sealed class LoggerMaskingTests
{
    [Theory]
    [InlineData(LogFormat.Json)]
    [InlineData(LogFormat.Console)]
    public void An_exception_is_logged_with_its_credentials_masked(LogFormat format)
    {
        using var output = new StringWriter();
        using (var provider = new DrakkarLoggerProvider(new LogSink(output, ownsWriter: false), new LogContext("w-1", "g"), format, LogLevel.Information))
        {
            var logger = provider.CreateLogger("test");
            var error = new InvalidOperationException("connect to postgresql://app:hunter2pw@db/app failed; Password=dsnpass99;",
                new IOException("upstream said Authorization: Bearer eyJsecret.token.sig"));
            logger.LogError(error, "delivery failed");
        }

        var text = output.ToString();
        Assert.Contains("delivery failed", text, StringComparison.Ordinal);
        Assert.Contains("InvalidOperationException", text, StringComparison.Ordinal);
        foreach (var secret in new[] { "hunter2pw", "dsnpass99", "eyJsecret" })
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(LogFormat.Json)]
    [InlineData(LogFormat.Console)]
    public void A_message_value_and_a_scope_field_are_logged_with_their_credentials_masked(LogFormat format)
    {
        using var output = new StringWriter();
        using (var provider = new DrakkarLoggerProvider(new LogSink(output, ownsWriter: false), new LogContext("w-1", "g"), format, LogLevel.Information))
        {
            var logger = provider.CreateLogger("test");
            // A task's stderr quoting the DSN it failed on, as the "failed for good" line carries it.
            using (logger.BeginScope(new Dictionary<string, object?> { ["upstream"] = "redis://:hunter2pw@cache:6379/0" }))
                logger.LogWarning("Task {TaskId} failed; stderr: {Stderr}", "t-1", "connecting to postgres://admin:s3cretpw@db:5432/x failed");
        }

        var text = output.ToString();
        Assert.Contains("postgres://admin:***@db:5432/x", text, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cretpw", text, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2pw", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_console_line_shows_the_messages_values_once_and_adds_the_scopes_fields()
    {
        using var output = new StringWriter();
        using (var provider = new DrakkarLoggerProvider(new LogSink(output, ownsWriter: false), new LogContext("w-1", "g"), LogFormat.Console, LogLevel.Information))
        {
            var logger = provider.CreateLogger("test");
            using (logger.BeginScope(new Dictionary<string, object?> { ["partition"] = 3 }))
                logger.LogError("The worker could not start: {Reason}", "sinks.filesystem.results: the handler declares this sink but it is not configured");
        }

        var line = output.ToString().TrimEnd();
        Assert.EndsWith("ERROR   The worker could not start: sinks.filesystem.results: the handler declares this sink but it is not configured partition=3", line,
            StringComparison.Ordinal);
        Assert.Single(line.Split('\n'));
    }

    [Fact]
    public void Scope_fields_are_written_in_snake_case_like_the_messages_own()
    {
        using var output = new StringWriter();
        using (var provider = new DrakkarLoggerProvider(new LogSink(output, ownsWriter: false), new LogContext("w-1", "g"), LogFormat.Json, LogLevel.Information))
        {
            var logger = provider.CreateLogger("test");
            // What the generic host's activity tracking pushes as a scope.
            using (logger.BeginScope(new Dictionary<string, object?> { ["SpanId"] = "00f067aa0ba902b7", ["TraceId"] = "4bf92f3577b34da6a3ce929d0e0e4736", ["partition"] = 3 }))
                logger.LogInformation("Task {TaskId} finished", "t-1");
        }

        var line = System.Text.Json.JsonDocument.Parse(output.ToString().Trim()).RootElement;
        Assert.Equal("00f067aa0ba902b7", line.GetProperty("span_id").GetString());
        Assert.Equal("4bf92f3577b34da6a3ce929d0e0e4736", line.GetProperty("trace_id").GetString());
        Assert.Equal(3, line.GetProperty("partition").GetInt32());
        Assert.Equal("t-1", line.GetProperty("task_id").GetString());
        Assert.False(line.TryGetProperty("SpanId", out _));
    }

    [Fact]
    public void A_json_line_carries_the_event_id_and_keeps_quotes_and_apostrophes_as_they_are()
    {
        using var output = new StringWriter();
        using (var provider = new DrakkarLoggerProvider(new LogSink(output, ownsWriter: false), new LogContext("w-1", "g"), LogFormat.Json, LogLevel.Information))
        {
            var logger = provider.CreateLogger("test");
            logger.LogWarning(new EventId(3002, "TaskFailed"), "Task {TaskId} exited: it's 'done' <now>", "t-1");
            logger.LogInformation("no event id");
        }

        var lines = output.ToString().Trim().Split('\n');
        Assert.Contains("it's 'done' <now>", lines[0], StringComparison.Ordinal);
        Assert.Equal(3002, System.Text.Json.JsonDocument.Parse(lines[0]).RootElement.GetProperty("event_id").GetInt32());
        Assert.False(System.Text.Json.JsonDocument.Parse(lines[1]).RootElement.TryGetProperty("event_id", out _));
    }

    /// <summary>
    /// A configured secret with no shape the patterns know (an HTTP header's bare token) reached the log when a task's
    /// stderr echoed it: the logger masked by shape only, and only call sites knew the sinks' secrets.
    /// </summary>
    [Theory]
    [InlineData(LogFormat.Json)]
    [InlineData(LogFormat.Console)]
    public async Task A_configured_sink_secret_is_masked_wherever_a_line_carries_it_verbatim(LogFormat format)
    {
        var config = new DrakkarConfig();
        config.Sinks.Http["hook"] = new HttpSinkConfig { Url = "http://receiver.invalid/hook", Headers = { ["X-Api-Key"] = "zq7Bare0Token" } };
        using var output = new StringWriter();
        using (var provider = new DrakkarLoggerProvider(new LogSink(output, ownsWriter: false), new LogContext("w-1", "g"), format, LogLevel.Information,
            Drakkar.Sinks.SinkSecretMasker.For(config)))
        {
            // The worker's sinks are built from the same configuration after its logger exists (as WorkerHost does).
            await using var manager = Drakkar.Sinks.SinkManager.Create(config, [new SinkDeclaration(SinkKind.Http, "hook")], new Drakkar.Sinks.SinkManagerOptions(),
                new Drakkar.Observability.Metrics.DrakkarMetrics(), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
            var logger = provider.CreateLogger("test");
            using (logger.BeginScope(new Dictionary<string, object?> { ["echo"] = "upstream answered zq7Bare0Token" }))
                logger.LogWarning("Task {TaskId} failed; stderr: {Stderr}", "t-1", "401 for key zq7Bare0Token");
        }

        var text = output.ToString();
        Assert.Contains("401 for key ***", text, StringComparison.Ordinal);
        Assert.DoesNotContain("zq7Bare0Token", text, StringComparison.Ordinal);
    }
}
