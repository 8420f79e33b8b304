using System.Runtime.InteropServices;
using Confluent.Kafka;
using Drakkar.IntegrationTests.Support;
using Drakkar.Kafka.Embedded;

namespace Drakkar.IntegrationTests.Kafka;

/// <summary>
/// The embedded broker's native thread (librdkafka's mock cluster, named <c>rdk:mock</c>) ends and frees the cluster
/// on any failed <c>poll()</c>, EINTR included. A worker's task processes send SIGCHLD as they exit, and the .NET
/// runtime handles SIGCHLD, so one of those signals landing on that thread killed the broker mid-run (clients saw
/// "Connection refused") and the broker's disposal then destroyed freed memory (glibc's "malloc(): unsorted double
/// linked list corrupted"). This test aims the signal at that thread directly.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class EmbeddedBrokerSignalTests
{
    private const int SIGCHLD = 17;

    [Fact]
    public async Task A_handled_signal_aimed_at_the_broker_thread_leaves_the_broker_serving()
    {
        // What every worker that ran a child process has: a handler for SIGCHLD, so the signal interrupts a blocking call.
        using var handled = PosixSignalRegistration.Create(PosixSignal.SIGCHLD, _ => { });
        var before = MockThreads();
        using var broker = EmbeddedKafkaBroker.Start();
        // The thread names itself once it runs.
        var threads = await Eventually.Get(() => MockThreads().Except(before).ToList(), t => t is { Count: > 0 }, TimeSpan.FromSeconds(10),
            "the broker's rdk:mock thread");
        broker.CreateTopic("signalled");

        // Several, apart: the thread spends nearly all its time in poll(), so the first one finds it there.
        for (var i = 0; i < 5; i++)
        {
            // A thread that already ended refuses the signal (ESRCH); the assertion below names it.
            foreach (var tid in threads) _ = TgKill(Environment.ProcessId, tid, SIGCHLD);
            await Task.Delay(50);
        }

        Assert.All(threads, tid => Assert.True(File.Exists($"/proc/self/task/{tid}/comm"), $"the broker thread {tid} ended after a SIGCHLD"));
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = broker.BootstrapServers, MessageTimeoutMs = 10_000,
        }).Build();
        var delivered = await producer.ProduceAsync("signalled", new Message<Null, string> { Value = "still here" });
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
    }

    /// <summary>The ids of this process's threads librdkafka named as mock cluster threads.</summary>
    private static HashSet<int> MockThreads() =>
    [
        .. Directory.EnumerateDirectories("/proc/self/task")
            .Where(task => ReadComm(task) == "rdk:mock")
            .Select(task => int.Parse(Path.GetFileName(task), System.Globalization.CultureInfo.InvariantCulture)),
    ];

    private static string? ReadComm(string task)
    {
        try
        {
            return File.ReadAllText(Path.Combine(task, "comm")).Trim();
        }
        catch (IOException)
        {
            return null; // the thread ended meanwhile
        }
    }

    [LibraryImport("libc", EntryPoint = "tgkill", SetLastError = true)]
    private static partial int TgKill(int processId, int threadId, int signal);
}
