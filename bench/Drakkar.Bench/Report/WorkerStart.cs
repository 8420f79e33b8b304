using System.Diagnostics;
using System.Globalization;

namespace Drakkar.Bench.Report;

/// <summary>
/// The sample worker as an operator starts it, on the embedded broker: wall time from process start to the
/// "is ready" log line, and the peak resident set (VmHWM) at that moment. The process is then killed.
/// </summary>
internal static class WorkerStart
{
    public sealed record Run(double ReadyMs, double PeakRssMb);

    public static async Task<Run> MeasureAsync(string fileName, IReadOnlyList<string> arguments, string workingDirectory)
    {
        var config = Path.Combine(workingDirectory, "bench-start.yaml");
        Directory.CreateDirectory(Path.Combine(workingDirectory, "results"));
        if (!File.Exists(config))
        {
            await File.WriteAllTextAsync(config, """
                kafka:
                  brokers: embedded
                  source_topic: bench-start
                  consumer_group: bench-start
                executor:
                  binary_path: /bin/true
                metrics:
                  enabled: false
                sinks:
                  filesystem:
                    results:
                      base_path: ./results
                logging:
                  level: INFO
                  format: json
                """);
        }
        var start = new ProcessStartInfo(fileName) { WorkingDirectory = workingDirectory, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(config);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var ready = new TaskCompletionSource<double>(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.AppendLine(e.Data);
            if (e.Data.Contains("is ready", StringComparison.Ordinal)) ready.TrySetResult(clock.Elapsed.TotalMilliseconds);
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            var finished = await Task.WhenAny(ready.Task, process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(60)));
            if (finished != ready.Task) throw new TimeoutException($"{fileName} logged no 'is ready' line (exited or 60 s passed):\n{log}");
            var readyMs = await ready.Task;
            return new Run(readyMs, PeakRssMb(process.Id));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    /// <summary>VmHWM from /proc: the process's peak resident set so far, in MB.</summary>
    private static double PeakRssMb(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (!line.StartsWith("VmHWM:", StringComparison.Ordinal)) continue;
            var kb = long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            return kb / 1024.0;
        }
        return double.NaN;
    }

    public static double SizeMb(string path) =>
        Directory.Exists(path)
            ? Directory.EnumerateFiles(path, "*.dll").Sum(f => new FileInfo(f).Length) / 1048576.0
            : new FileInfo(path).Length / 1048576.0;
}
