using Confluent.Kafka;
using Drakkar.Execution.Posix;
using Drakkar.Kafka.Embedded;

namespace Drakkar.IntegrationTests.Kafka;

/// <summary>
/// Taking an embedded broker down closes its listening socket and binds the port again at once; a child process
/// forked in that moment and not yet exec'd still holds the old socket, the bind fails, and librdkafka aborts the
/// whole process ("Failed to create mock broker listener"). The integration suite's broker-outage tests ran next to
/// tests starting processes and took the test host down this way about once in seven runs. Here the two race on
/// purpose: without the spawn gate this aborted the test host within 100 cycles, three runs out of three.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class EmbeddedBrokerDownUpTests
{
    [Fact]
    public async Task Taking_the_broker_down_and_up_while_processes_start_leaves_the_process_and_the_broker_working()
    {
        using var broker = EmbeddedKafkaBroker.Start();
        broker.CreateTopic("down-up");
        using var stop = new CancellationTokenSource();
        var started = 0;
        var spawners = Enumerable.Range(0, 2).Select(n => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var child = ChildProcess.Start("/bin/sleep", ["0.05"], new Dictionary<string, string>(), pipeStdin: false);
                Interlocked.Increment(ref started);
                _ = child.WaitForExitAsync();
                await Task.Yield();
            }
        })).ToArray();

        for (var i = 0; i < 100; i++)
        {
            broker.SetBrokerDown();
            broker.SetBrokerUp();
            // A down/up holds process starts back while it runs: let another one start before the next cycle.
            var before = Volatile.Read(ref started);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (Volatile.Read(ref started) == before && clock.Elapsed < TimeSpan.FromSeconds(1)) Thread.Yield();
        }
        await stop.CancelAsync();
        await Task.WhenAll(spawners);

        Assert.True(started >= 100, $"only {started} processes started while the broker went down and up");
        // Still serving after the last cycle: a record goes in and its delivery is acknowledged.
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers }).Build();
        var delivered = await producer.ProduceAsync("down-up", new Message<Null, string> { Value = "after" });
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
    }
}
