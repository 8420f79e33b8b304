using System.Diagnostics;
using System.Globalization;
using Drakkar;
using Drakkar.Bench.Report;
using Drakkar.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

// drakkar-bench-worker <brokers> <topic> <group> <recorder-dir|-> <debug-port>
// One side of the bench's orchestration rows in a process of its own (docs/performance.md). It prints "ready" once the
// worker is started, "first=<timestamp> cpu_ms=<ms> recorder_ms=<ms>" when it arranges its first window (a Stopwatch timestamp: the
// monotonic clock the parent reads too), and on a "stop" line from stdin "end cpu_ms=… allocated=… gc=…/…/…
// pause_ms=… calls=… dropped=… recorder_ms=…" before it stops (recorder_ms, in both lines: the recorder's writer
// thread's CPU so far).
if (args.Length != 5)
{
    Console.Error.WriteLine("usage: drakkar-bench-worker <brokers> <topic> <group> <recorder-dir|-> <debug-port>");
    return 2;
}
var recorderDir = args[3] == "-" ? null : args[3];
var config = OrchestrationWorker.Config(args[0], args[1], args[2], backpressure: null, recorderDir, int.Parse(args[4], CultureInfo.InvariantCulture));
var handler = new EchoHandler();
var parts = DrakkarApp.DefaultParts();
await using var host = await WorkerHost.StartAsync(handler, config, "bench-worker",
    new WorkerParts { Executor = parts.Executor, Delivery = parts.Delivery, Loggers = NullLoggerFactory.Instance }, CancellationToken.None);
Console.WriteLine("ready");
var first = handler.Started.ContinueWith(
    _ => Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"first={handler.FirstArrange} cpu_ms={CpuMs()} recorder_ms={OrchestrationWorker.RecorderThreadCpuMs():F0}")), TaskScheduler.Default);
var (gen0, gen1, gen2, pause, allocated) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration(), GC.GetTotalAllocatedBytes());
while (Console.ReadLine() is { } line && line != "stop")
{
}
await first.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
var calls = host.Metrics.Registry.Export().Split('\n')
    .FirstOrDefault(l => l.StartsWith("drakkar_sink_deliver_duration_seconds_count{sink_type=\"kafka\"", StringComparison.Ordinal)) is { } count
    ? count[(count.LastIndexOf(' ') + 1)..] : "0";
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"end cpu_ms={CpuMs()} allocated={GC.GetTotalAllocatedBytes() - allocated} gc={GC.CollectionCount(0) - gen0}/{GC.CollectionCount(1) - gen1}/{GC.CollectionCount(2) - gen2} " +
    $"pause_ms={(GC.GetTotalPauseDuration() - pause).TotalMilliseconds:F0} calls={calls} dropped={host.Debug?.Recorder.Dropped ?? 0} " +
    $"recorder_ms={OrchestrationWorker.RecorderThreadCpuMs():F0}"));
await host.StopAsync();
return 0;

static long CpuMs() => (long)Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;
