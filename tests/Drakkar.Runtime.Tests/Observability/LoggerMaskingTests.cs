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
}
