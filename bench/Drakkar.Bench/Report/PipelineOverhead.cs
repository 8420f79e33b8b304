using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Drakkar.Hosting;
using Drakkar.Kafka.Embedded;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Bench.Report;

/// <summary>
/// Orchestration overhead: precomputed tasks (no process runs) through the whole worker — embedded broker in,
/// window, executor pool, hooks, Kafka sink, offset commits — against a hand-written Confluent.Kafka
/// consume→produce loop with manual commits over the same input. Both are timed from their first consumed record
/// (so the consumer-group join is left out) until the group's committed offsets reach the end of every partition.
/// </summary>
internal static class PipelineOverhead
{
    public const int Partitions = 8;

    /// <summary>Backpressure multipliers (high, low) for diagnostic runs; null keeps the defaults (32, 4).</summary>
    public static (int High, int Low)? Backpressure { get; set; }

    /// <summary>Diagnostic: the hand loop consumes with the worker's fetch settings instead of librdkafka's defaults.</summary>
    public static bool HandLoopWithWorkerFetchSettings { get; set; }

    /// <summary>Diagnostic (<c>--alloc-types</c>): prints the types each worker run allocates most, to stderr.</summary>
    public static AllocationSampler? Allocations { get; set; }

    /// <summary>Where the worker's time went in each run: pause/resume cycles, paused share, Kafka sink calls.</summary>
    public static List<string> Diagnostics { get; } = [];

    /// <summary>
    /// Each debug run's share of the worker's process CPU (from its first window to the end) that the recorder's writer
    /// thread used, in the order the runs ended: the part of the recorder's cost that is measured directly rather than
    /// read from the throughput of two runs.
    /// </summary>
    public static List<double> RecorderCpuShares { get; } = [];

    /// <summary>Produces the input (not timed): small values, spread evenly so the mock cluster keeps every record.</summary>
    private static string PrepareInput(EmbeddedKafkaBroker broker, string name, int messages)
    {
        broker.CreateTopic(name, Partitions);
        broker.CreateTopic(name + "-out", Partitions);
        using var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, LingerMs = 5 }).Build();
        for (var i = 0; i < messages; i++)
        {
            producer.Produce(new TopicPartition(name, i % Partitions), new Message<byte[]?, byte[]> { Key = null, Value = Encoding.UTF8.GetBytes($"m-{i}") });
            if (i % 20_000 == 19_999) producer.Flush(TimeSpan.FromSeconds(60));
        }
        producer.Flush(TimeSpan.FromSeconds(60));
        return name;
    }

    /// <param name="broker">The embedded broker both sides read from.</param>
    /// <param name="messages">Records in the run.</param>
    /// <param name="round">Tells the run's topics apart.</param>
    /// <param name="debug">
    /// With the flight recorder writing to a temporary directory and the debug UI listening, one page following its
    /// event stream the whole run (what an operator watching the worker costs it).
    /// </param>
    public static async Task<double> RunDrakkarAsync(EmbeddedKafkaBroker broker, int messages, int round, bool debug = false)
    {
        var topic = PrepareInput(broker, $"pipe-drakkar{(debug ? "-debug" : "")}-{round}", messages);
        var group = topic + "-group";
        var recorderDir = debug ? Directory.CreateTempSubdirectory("drakkar-bench-recorder-").FullName : null;
        var config = OrchestrationWorker.Config(broker.BootstrapServers, topic, group, Backpressure, recorderDir, debugPort: 0);
        var handler = new EchoHandler();
        var parts = DrakkarApp.DefaultParts();
        await using var host = await WorkerHost.StartAsync(handler, config, "bench-worker",
            new WorkerParts { Executor = parts.Executor, Delivery = parts.Delivery, Loggers = NullLoggerFactory.Instance }, CancellationToken.None);
        using var watching = new CancellationTokenSource();
        var watcher = host.Debug is { Endpoint: { } ui } ? FollowStreamAsync($"http://{ui}/api/stream", watching.Token) : Task.FromResult(0L);
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var recorderBefore = OrchestrationWorker.RecorderThreadCpuMs();
        var (allocatedBefore, gen0Before, gen1Before, gen2Before, pauseBefore) =
            (GC.GetTotalAllocatedBytes(), GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
        Allocations?.Start();
        using var sampling = new CancellationTokenSource();
        var sampler = SampleLoadAsync(host, handler, messages / 2, sampling.Token);
        var ended = await WaitForCommittedEndAsync(broker.BootstrapServers, topic, group, messages);
        var seconds = (ended - handler.FirstArrange) / (double)Stopwatch.Frequency;
        var cpuEnd = Process.GetCurrentProcess().TotalProcessorTime;
        var recorderSeconds = (OrchestrationWorker.RecorderThreadCpuMs() - recorderBefore) / 1000;
        var cpu = (cpuEnd - cpuBefore).TotalSeconds;
        var allocated = GC.GetTotalAllocatedBytes() - allocatedBefore;
        var collections = (GC.CollectionCount(0) - gen0Before, GC.CollectionCount(1) - gen1Before, GC.CollectionCount(2) - gen2Before);
        var gcPause = (GC.GetTotalPauseDuration() - pauseBefore).TotalMilliseconds;
        if (Allocations is { } allocations)
        {
            foreach (var (type, share) in allocations.Stop()) Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"allocated by the worker: {100 * share,5:F1} % {type}"));
            Console.Error.WriteLine(allocations.Collections());
        }
        await sampling.CancelAsync();
        var (samples, paused, meanInFlight, maxInFlight, halfAt, halfCpu) = await sampler;
        var load = host.Load!;
        var halves = halfAt == 0 ? "not sampled" : string.Create(CultureInfo.InvariantCulture,
            $"CPU {(halfCpu - cpuBefore).TotalSeconds:F2} s from the start until half were arranged ({(halfAt - handler.FirstArrange) / (double)Stopwatch.Frequency:F2} s after the first), then {(cpuEnd - halfCpu).TotalSeconds:F2} s in {(ended - halfAt) / (double)Stopwatch.Frequency:F2} s");
        Diagnostics.Add(string.Create(CultureInfo.InvariantCulture,
            $"worker {seconds:F2} s, process CPU {cpu:F2} s ({cpu * 1e6 / messages:F0} µs/task, {cpu / seconds:F2} cores busy), {load.Pauses} pauses / {load.Resumes} resumes (one per {messages / Math.Max(1, load.Pauses)} messages), " +
            $"paused {100.0 * paused / samples:F0} % of samples, payloads in flight {meanInFlight} mean / {maxInFlight} max, {allocated / messages} B allocated/task, GC {collections.Item1}/{collections.Item2}/{collections.Item3} (gen0/1/2) pausing {gcPause:F0} ms, " +
            $"halves: {halves}"));
        // The worker's own metrics (consumed, delivered, handler and sink timings) for the "where the time goes" notes.
        var metrics = host.Metrics.Registry.Export();
        await File.WriteAllTextAsync(Path.Combine(Path.GetTempPath(), $"drakkar-bench-pipeline-metrics-{round}.txt"), metrics);
        var calls = Metric(metrics, "drakkar_sink_deliver_duration_seconds_count{sink_type=\"kafka\"");
        var callSeconds = Metric(metrics, "drakkar_sink_deliver_duration_seconds_sum{sink_type=\"kafka\"");
        Diagnostics[^1] += string.Create(CultureInfo.InvariantCulture,
            $", {calls:F0} Kafka sink calls for {messages} records (mean {1000 * callSeconds / Math.Max(calls, 1):F1} ms each)");
        await watching.CancelAsync();
        var streamed = await watcher;
        if (host.Debug is { } console)
        {
            Diagnostics[^1] += string.Create(CultureInfo.InvariantCulture,
                $", recorder dropped {console.Recorder.Dropped} events, the page received {streamed / 1024} KiB of server-sent events, " +
                $"recorder thread {recorderSeconds:F2} s of CPU ({100 * recorderSeconds / cpu:F1} % of the process's)");
            RecorderCpuShares.Add(recorderSeconds / cpu);
        }
        await host.StopAsync();
        if (recorderDir is not null)
        {
            var stored = Directory.EnumerateFiles(recorderDir).Sum(f => new FileInfo(f).Length);
            Diagnostics[^1] += string.Create(CultureInfo.InvariantCulture, $", recorder files {stored / 1024 / 1024.0:F1} MiB");
            Directory.Delete(recorderDir, recursive: true);
        }
        return messages / seconds;
    }

    /// <summary>
    /// The same run with the worker as a Native AOT process of its own (<c>drakkar-bench-worker</c>, what a user
    /// publishes), the broker staying in this process: timed from the worker's first window (its own clock reading of
    /// the monotonic clock this process reads too) until the group's committed offsets reach the end.
    /// </summary>
    public static async Task<double> RunAotAsync(EmbeddedKafkaBroker broker, string worker, int messages, int round, bool debug = false)
    {
        var topic = PrepareInput(broker, $"pipe-aot{(debug ? "-debug" : "")}-{round}", messages);
        var group = topic + "-group";
        var recorderDir = debug ? Directory.CreateTempSubdirectory("drakkar-bench-recorder-").FullName : null;
        var port = 0;
        if (debug)
        {
            using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }
        var start = new ProcessStartInfo(worker) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[broker.BootstrapServers, topic, group, recorderDir ?? "-", port.ToString(CultureInfo.InvariantCulture)])
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        async Task<string> Line(string prefix)
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
                if (line.StartsWith(prefix, StringComparison.Ordinal)) return line;
            await process.WaitForExitAsync();
            throw new InvalidOperationException($"drakkar-bench-worker exited {process.ExitCode} before '{prefix}': {await errors}");
        }
        static Dictionary<string, string> Fields(string line) =>
            line.Split(' ').Where(f => f.Contains('=')).Select(f => f.Split('=', 2)).ToDictionary(f => f[0], f => f[1]);
        await Line("ready");
        using var watching = new CancellationTokenSource();
        var watcher = debug ? FollowStreamAsync($"http://127.0.0.1:{port}/api/stream", watching.Token) : Task.FromResult(0L);
        var ended = await WaitForCommittedEndAsync(broker.BootstrapServers, topic, group, messages);
        await process.StandardInput.WriteLineAsync("stop");
        var first = Fields(await Line("first="));
        var end = Fields(await Line("end "));
        await process.WaitForExitAsync();
        await watching.CancelAsync();
        var streamed = await watcher;
        var seconds = (ended - long.Parse(first["first"], CultureInfo.InvariantCulture)) / (double)Stopwatch.Frequency;
        var cpu = (long.Parse(end["cpu_ms"], CultureInfo.InvariantCulture) - long.Parse(first["cpu_ms"], CultureInfo.InvariantCulture)) / 1000.0;
        var note = string.Create(CultureInfo.InvariantCulture,
            $"worker {seconds:F2} s, process CPU {cpu:F2} s from the first window ({cpu * 1e6 / messages:F1} µs/task, {cpu / seconds:F2} cores busy), " +
            $"{long.Parse(end["allocated"], CultureInfo.InvariantCulture) / messages} B allocated/task, GC {end["gc"]} (gen0/1/2) pausing {end["pause_ms"]} ms, " +
            $"{end["calls"]} Kafka sink calls");
        if (recorderDir is not null)
        {
            var stored = Directory.EnumerateFiles(recorderDir).Sum(f => new FileInfo(f).Length);
            var recorderSeconds = (double.Parse(end["recorder_ms"], CultureInfo.InvariantCulture) - double.Parse(first["recorder_ms"], CultureInfo.InvariantCulture)) / 1000;
            RecorderCpuShares.Add(recorderSeconds / cpu);
            note += string.Create(CultureInfo.InvariantCulture,
                $", recorder dropped {end["dropped"]} events, the page received {streamed / 1024} KiB of server-sent events, recorder files {stored / 1024 / 1024.0:F1} MiB, " +
                $"recorder thread {recorderSeconds:F2} s of CPU ({100 * recorderSeconds / cpu:F1} % of the process's)");
            Directory.Delete(recorderDir, recursive: true);
        }
        Diagnostics.Add(note);
        return messages / seconds;
    }

    /// <summary>Reads the debug UI's event stream like an open page does, until stopped; returns the bytes received.</summary>
    private static async Task<long> FollowStreamAsync(string url, CancellationToken stop)
    {
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        long total = 0;
        try
        {
            await using var stream = await http.GetStreamAsync(url, stop);
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await stream.ReadAsync(buffer, stop)) > 0) total += read;
        }
        catch (OperationCanceledException)
        {
            // The run is over.
        }
        return total;
    }

    public static async Task<double> RunHandLoopAsync(EmbeddedKafkaBroker broker, int messages, int round)
    {
        var topic = PrepareInput(broker, $"pipe-hand-{round}", messages);
        var group = topic + "-group";
        long first = 0;
        using var stop = new CancellationTokenSource();
        var loop = Task.Factory.StartNew(() =>
        {
            var consumerConfig = new ConsumerConfig
            {
                BootstrapServers = broker.BootstrapServers, GroupId = group, EnableAutoCommit = false,
                AutoOffsetReset = AutoOffsetReset.Earliest, SessionTimeoutMs = 6000, HeartbeatIntervalMs = 500,
            };
            if (HandLoopWithWorkerFetchSettings)
            {
                // The fetch settings Kafka/SourceConsumer.cs uses, to tell the consumer's share of the gap from the rest.
                consumerConfig.QueuedMaxMessagesKbytes = 8 * 1024;
                consumerConfig.QueuedMinMessages = 1_000;
                consumerConfig.FetchWaitMaxMs = 50;
                consumerConfig.FetchErrorBackoffMs = 50;
                consumerConfig.PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky;
            }
            using var consumer = new ConsumerBuilder<byte[]?, byte[]>(consumerConfig).Build();
            using var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig
            {
                BootstrapServers = broker.BootstrapServers, Acks = Acks.All, LingerMs = 0,
            }).Build();
            consumer.Subscribe(topic);
            var next = new Dictionary<TopicPartition, TopicPartitionOffset>();
            var lastCommit = Stopwatch.GetTimestamp();
            var commitEvery = OrchestrationWorker.CommitIntervalMs * Stopwatch.Frequency / 1000;
            while (!stop.IsCancellationRequested)
            {
                var record = consumer.Consume(TimeSpan.FromMilliseconds(100));
                if (record is not null)
                {
                    if (first == 0) first = Stopwatch.GetTimestamp();
                    var value = Encoding.UTF8.GetString(record.Message.Value);
                    producer.Produce(topic + "-out", new Message<byte[]?, byte[]> { Value = Encoding.UTF8.GetBytes($"{{\"value\":\"{value}\"}}") });
                    next[record.TopicPartition] = new TopicPartitionOffset(record.TopicPartition, record.Offset + 1);
                }
                // At least once: whatever is committed has been delivered.
                if (next.Count > 0 && (record is null || Stopwatch.GetTimestamp() - lastCommit >= commitEvery))
                {
                    producer.Flush(TimeSpan.FromSeconds(30));
                    consumer.Commit(next.Values);
                    next.Clear();
                    lastCommit = Stopwatch.GetTimestamp();
                }
            }
            consumer.Close();
        }, TaskCreationOptions.LongRunning);
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var allocatedBefore = GC.GetTotalAllocatedBytes();
        var ended = await WaitForCommittedEndAsync(broker.BootstrapServers, topic, group, messages);
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        var allocated = GC.GetTotalAllocatedBytes() - allocatedBefore;
        await stop.CancelAsync();
        await loop;
        var seconds = (ended - first) / (double)Stopwatch.Frequency;
        Diagnostics.Add(string.Create(CultureInfo.InvariantCulture,
            $"hand loop {seconds:F2} s, process CPU {cpu:F2} s including the group join ({cpu * 1e6 / messages:F0} µs/task), {allocated / messages:F0} B allocated per task"));
        return messages / seconds;
    }

    private static double Metric(string exposition, string prefix)
    {
        var line = exposition.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return line is null ? double.NaN : double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Samples every 10 ms from the first window on whether consumption is paused, and notes the time and the process's
    /// CPU when <paramref name="half"/> messages have been arranged (the run's first half against the rest). A
    /// dedicated thread, so a saturated thread pool does not bias the samples toward idle moments. (Every millisecond,
    /// the sampler's own wake-ups took ~2.7 % of the process's CPU in a profile, charged to the worker's side only.)
    /// </summary>
    private static Task<(int Samples, int Paused, long MeanInFlight, long MaxInFlight, long HalfAt, TimeSpan HalfCpu)> SampleLoadAsync(WorkerHost host, EchoHandler handler, long half, CancellationToken stop)
    {
        var done = new TaskCompletionSource<(int, int, long, long, long, TimeSpan)>(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            int samples = 0, paused = 0;
            long inFlightSum = 0, inFlightMax = 0, halfAt = 0;
            var halfCpu = TimeSpan.Zero;
            while (!stop.IsCancellationRequested)
            {
                Thread.Sleep(10);
                if (handler.FirstArrange == 0 || host.Load is not { } load) continue;
                if (halfAt == 0 && handler.Arranged >= half) (halfAt, halfCpu) = (Stopwatch.GetTimestamp(), Process.GetCurrentProcess().TotalProcessorTime);
                samples++;
                if (load.Paused) paused++;
                var inFlight = load.InFlightPayloads;
                inFlightSum += inFlight;
                inFlightMax = Math.Max(inFlightMax, inFlight);
            }
            samples = Math.Max(samples, 1);
            done.SetResult((samples, paused, inFlightSum / samples, inFlightMax, halfAt, halfCpu));
        }) { IsBackground = true, Name = "bench-load-sampler" }.Start();
        return done.Task;
    }

    /// <summary>Polls the group's committed offsets (a separate client, not a group member) until they cover every record.</summary>
    private static async Task<long> WaitForCommittedEndAsync(string brokers, string topic, string group, int messages)
    {
        using var watcher = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = brokers, GroupId = group }).Build();
        var partitions = Enumerable.Range(0, Partitions).Select(p => new TopicPartition(topic, p)).ToArray();
        var deadline = Stopwatch.GetTimestamp() + 300 * Stopwatch.Frequency;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var committed = watcher.Committed(partitions, TimeSpan.FromSeconds(10)).Sum(c => Math.Max(0, c.Offset.Value));
            if (committed >= messages) return Stopwatch.GetTimestamp();
            await Task.Delay(10);
        }
        throw new TimeoutException($"group {group} did not commit {messages} records of {topic} within 300 s");
    }
}
