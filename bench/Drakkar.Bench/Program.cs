using System.Globalization;
using BenchmarkDotNet.Running;
using Drakkar.Bench.Diagnostics;
using Drakkar.Bench.Execution;
using Drakkar.Bench.Report;
using Drakkar.Bench.Scenarios;
using Drakkar.Bench.Sinks;

// Each scenario measures Drakkar against its baseline in the same run, so results read as ratios.
return args switch
{
    ["json", .. var rest] => RunBenchmarks(typeof(JsonWriterBenchmarks), rest),
    ["sinks", .. var rest] => await SinkThroughput.RunAsync(rest),
    ["redis-cpu", .. var rest] => await RedisSinkCpu.RunAsync(rest),
    ["executor", .. var rest] => await RunExecutor(rest),
    ["recorder", .. var rest] => await RecorderCost.RunAsync(rest),
    ["recorder-store", .. var rest] => RecorderCost.RunStore(rest),
    ["report", .. var rest] => WorkerGc.RunsUnderIt() ? await PerformanceReport.RunAsync(rest) : await WorkerGc.RunAgainUnderItAsync(args),
    ["memory-child", .. var rest] => await EndToEnd.MemoryChildAsync(rest),
    _ => Usage(),
};

static int RunBenchmarks(Type benchmarks, string[] options)
{
    BenchmarkRunner.Run(benchmarks, args: options);
    return 0;
}

static async Task<int> RunExecutor(string[] options)
{
    var tasks = options.Length > 0 ? int.Parse(options[0], CultureInfo.InvariantCulture) : 2000;
    var parallelism = options.Length > 1 ? int.Parse(options[1], CultureInfo.InvariantCulture) : 2;
    var rounds = options.Length > 2 ? int.Parse(options[2], CultureInfo.InvariantCulture) : 5;
    await ExecutorThroughput.RunAsync(tasks, parallelism, rounds);
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("""
        usage: Drakkar.Bench <scenario> [options]
        scenarios:
          json [BenchmarkDotNet options]       generated payload JSON writer vs System.Text.Json source generation
          sinks [seconds]                      delivered payloads/s per sink kind against local servers
          redis-cpu [payloads] [64,1000] [rounds] [--alloc-types]
                                               the Redis sink's CPU µs and allocated bytes per SET, alone and through a SinkManager
          executor [tasks] [parallel] [rounds] /bin/true through the executor pool vs xargs -P
          recorder [events] [rounds]           flight recorder CPU per task event: stored, memory only, not recording
          recorder-store [events] [rounds]     the recorder's database writes alone (EventStore.Append), CPU per event
          report [--out docs/performance.md] [--rounds 3] [--messages 100000] [--sink-payloads 50000]
                 [--only pipeline,orchestration,executor,sinks,start|postgres|redis|kafka-sink
                         pipeline-sinks|pipeline-postgres,pipeline-redis,pipeline-files,pipeline-http,pipeline-exec,memory]
                 [--aot <drakkar-sample>] [--jit <drakkar-sample.dll>]
                 [--aot-worker <drakkar-bench-worker>]  (pipeline-debug-aot, also run by --only pipeline: the debug row
                                                         with the worker published as Native AOT, in its own process)
                 [--exec-tasks 2000] [--lag-messages 1000000] [--lag-seconds 30]  (pipeline-exec; memory's lag row)
                 [--backpressure high,low]  (diagnostic: executor.backpressure_*_multiplier for the pipeline)
                 [--hand-loop-fetch worker] (diagnostic: the hand loop consumes with the worker's fetch settings)
                 [--alloc-types]            (diagnostic: the types each orchestration worker run allocates most, to stderr)
                                               every scenario vs its baseline, alternating; writes the markdown table
          memory-child drakkar|hand <brokers> <topic> <partitions> <target> <max-seconds>
                                               (internal: one side of the memory rows, alone in its process)
        """);
    return 2;
}
