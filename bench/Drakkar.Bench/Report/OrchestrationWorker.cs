using System.Diagnostics;
using System.Text;

namespace Drakkar.Bench.Report;

/// <summary>The result a precomputed task hands to the Kafka sink.</summary>
[Payload]
public sealed partial record EchoResult(string Value);

/// <summary>
/// The orchestration rows' worker: its configuration and handler. The bench runs it in its own process (JIT) and,
/// compiled into <c>drakkar-bench-worker</c> (bench/Drakkar.Bench.Worker), as a Native AOT process of its own.
/// </summary>
internal static class OrchestrationWorker
{
    /// <summary>kafka.commit_interval_ms of the worker; the hand loop commits as often.</summary>
    public const int CommitIntervalMs = 50;

    /// <param name="brokers">Bootstrap servers.</param>
    /// <param name="topic">Source topic; the Kafka sink writes to <c>{topic}-out</c>.</param>
    /// <param name="group">Consumer group.</param>
    /// <param name="backpressure">executor.backpressure_high/low_multiplier; null keeps the defaults.</param>
    /// <param name="recorderDir">With a directory: debug.enabled, the flight recorder storing there.</param>
    /// <param name="debugPort">debug.port when the debug UI is on (0: any free port).</param>
    public static DrakkarConfig Config(string brokers, string topic, string group, (int High, int Low)? backpressure, string? recorderDir, int debugPort)
    {
        var config = new DrakkarConfig
        {
            Kafka =
            {
                Brokers = brokers, SourceTopic = topic, ConsumerGroup = group, CommitIntervalMs = CommitIntervalMs,
                SessionTimeoutMs = 6000, HeartbeatIntervalMs = 500,
            },
            Metrics = { Enabled = false },
        };
        config.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = topic + "-out" };
        if (backpressure is var (high, low))
        {
            config.Executor.BackpressureHighMultiplier = high;
            config.Executor.BackpressureLowMultiplier = low;
        }
        if (recorderDir is not null) config.Debug = new DebugConfig { Enabled = true, Port = debugPort, DbDir = recorderDir };
        return config;
    }

    /// <summary>
    /// CPU time the flight recorder's writer thread has used so far (ms), read from <c>/proc</c>: the thread named
    /// <c>drakkar-recorder</c> (<c>comm</c> keeps its first 15 characters); 0 when there is none. Of a process
    /// with one worker; a recorder of an earlier worker in the process has ended with its worker.
    /// </summary>
    public static double RecorderThreadCpuMs()
    {
        foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).TrimEnd() != "drakkar-recorde") continue;
                // schedstat: nanoseconds on a CPU, then waiting, then time slices.
                var onCpuNs = File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0];
                return long.Parse(onCpuNs, System.Globalization.CultureInfo.InvariantCulture) / 1e6;
            }
            catch (IOException)
            {
                // The thread ended meanwhile.
            }
        }
        return 0;
    }
}

/// <summary>One precomputed task per message; each completed task sends one record to the Kafka sink.</summary>
[Sink(SinkKind.Kafka, "results")]
public sealed partial class EchoHandler : DrakkarHandler
{
    private long _firstArrange;
    private long _arranged;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>When the first window was arranged (<see cref="Stopwatch.GetTimestamp"/>); 0 before.</summary>
    public long FirstArrange => Interlocked.Read(ref _firstArrange);

    /// <summary>Completes when the first window is arranged.</summary>
    public Task Started => _started.Task;

    /// <summary>Messages arranged so far.</summary>
    public long Arranged => Interlocked.Read(ref _arranged);

    public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
    {
        if (Interlocked.CompareExchange(ref _firstArrange, Stopwatch.GetTimestamp(), 0) == 0) _started.TrySetResult();
        Interlocked.Add(ref _arranged, messages.Count);
        var tasks = new ExecutorTask[messages.Count];
        for (var i = 0; i < tasks.Length; i++)
        {
            tasks[i] = new ExecutorTask(TaskId.New("echo"))
            {
                Precomputed = new PrecomputedResult(Encoding.UTF8.GetString(messages[i].Value)),
                SourceOffsets = [messages[i].Offset],
            };
        }
        return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>(tasks);
    }

    public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result) =>
        ValueTask.FromResult<CollectResult?>(new CollectResult { Kafka = { KafkaPayload.Of(new EchoResult(result.Stdout)) } });
}
