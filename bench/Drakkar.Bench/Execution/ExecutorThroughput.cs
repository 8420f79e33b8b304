using System.Diagnostics;
using System.Globalization;
using Drakkar.Execution;

namespace Drakkar.Bench.Execution;

/// <summary>
/// Process-spawn throughput of the executor pool against <c>xargs -P</c> (the floor any spawner can hope for) and
/// against .NET's <see cref="Process"/> behind a <c>setsid</c> wrapper (the other way to get a process group),
/// side by side in one run: each round runs every contender once, in turn, so machine noise hits them alike.
/// </summary>
internal static class ExecutorThroughput
{
    public static async Task<int> RunAsync(int tasks, int parallelism, int rounds)
    {
        var contenders = new (string Name, Func<Task> Run)[]
        {
            ($"xargs -P {parallelism}", () => Xargs(tasks, parallelism)),
            ("ExecutorPool (posix_spawn)", () => Pool(tasks, parallelism)),
            ("Process + setsid", () => ProcessWithSetsid(tasks, parallelism)),
        };
        var seconds = contenders.ToDictionary(c => c.Name, _ => new List<double>());
        for (var round = 0; round < rounds; round++)
        {
            foreach (var (name, run) in contenders)
            {
                var clock = Stopwatch.StartNew();
                await run();
                seconds[name].Add(clock.Elapsed.TotalSeconds);
            }
        }

        var baseline = Median(seconds[contenders[0].Name]);
        Console.WriteLine($"{tasks} × /bin/true, {parallelism} at a time, median of {rounds} rounds");
        foreach (var (name, _) in contenders)
        {
            var median = Median(seconds[name]);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name,-28} {tasks / median,8:F0} tasks/s  {median * 1000 / tasks * parallelism,6:F2} ms/task/slot  ratio vs xargs {baseline / median,5:F2}"));
        }

        return 0;
    }

    internal static async Task Pool(int tasks, int parallelism)
    {
        await using var pool = new ExecutorPool(new ExecutorConfig { BinaryPath = "/bin/true", MaxExecutors = parallelism });
        var runs = new Task<ExecutorOutcome>[tasks];
        for (var i = 0; i < tasks; i++)
        {
            runs[i] = pool.ExecuteAsync(new ExecutorTask($"t{i}"), i).AsTask();
        }

        foreach (var outcome in await Task.WhenAll(runs))
        {
            if (!outcome.Succeeded)
            {
                throw new InvalidOperationException(outcome.Error.Message);
            }
        }
    }

    private static async Task ProcessWithSetsid(int tasks, int parallelism)
    {
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, parallelism).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) < tasks)
            {
                var start = new ProcessStartInfo("/usr/bin/setsid")
                {
                    RedirectStandardInput = true,
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    ArgumentList = { "/bin/true" },
                };
                using var process = Process.Start(start)!;
                process.StandardInput.Close();
                var output = process.StandardOutput.ReadToEndAsync();
                var errors = process.StandardError.ReadToEndAsync();
                await process.WaitForExitAsync();
                await Task.WhenAll(output, errors);
            }
        }));
    }

    internal static async Task Xargs(int tasks, int parallelism, string command = "/bin/true")
    {
        using var process = Process.Start(new ProcessStartInfo("/bin/sh")
        {
            ArgumentList = { "-c", $"seq {tasks} | xargs -P {parallelism} -n 1 {command} > /dev/null" },
        })!;
        await process.WaitForExitAsync();
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
