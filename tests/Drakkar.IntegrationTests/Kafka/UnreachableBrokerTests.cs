using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Kafka;

/// <summary>A worker whose brokers cannot be reached: the client's errors are counted, and logged without a flood.</summary>
public sealed class UnreachableBrokerTests
{
    private sealed class IdleHandler : DrakkarHandler
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    [Fact]
    public async Task Each_client_error_code_is_logged_at_most_once_per_ten_seconds_while_the_counter_has_every_one()
    {
        // Nothing listens on port 1: librdkafka reports the refused connection every few tens of milliseconds.
        var config = TestWorker.Config("127.0.0.1:1", "unreachable", "unreachable-g", c => c.Executor.BinaryPath = "/bin/true");
        using var logs = new LogCapture();
        var worker = await TestWorker.StartAsync(new IdleHandler(), config, loggers: logs);
        try
        {
            await Eventually.True(() => worker.Metrics.ConsumerErrors.Value() >= 10, TimeSpan.FromSeconds(30),
                () => $"ten client errors counted\n{logs.Text()}");
        }
        finally
        {
            await worker.StopAsync();
            await worker.DisposeAsync();
        }

        var lines = logs.Containing("Kafka error ");
        Assert.NotEmpty(lines);
        // Within ten seconds each code is logged once: the codes are the text up to the first ':'.
        var codes = lines.Select(l => l.Message["Kafka error ".Length..l.Message.IndexOf(':', StringComparison.Ordinal)]).ToList();
        Assert.True(codes.Count == codes.Distinct().Count(), logs.Text());
        Assert.True(worker.Metrics.ConsumerErrors.Value() > lines.Length, $"counted {worker.Metrics.ConsumerErrors.Value()}, logged {lines.Length}");
    }
}
