using BenchmarkDotNet.Running;
using Drakkar.Bench.Scenarios;

// Each scenario is one benchmark class measured against its baseline in the same run, so results read as ratios.
// Add a scenario by adding its class here.
var scenarios = new Dictionary<string, (Type Benchmarks, string Description)>(StringComparer.OrdinalIgnoreCase)
{
    ["json"] = (typeof(JsonWriterBenchmarks), "generated payload JSON writer vs System.Text.Json source generation"),
};

if (args.Length == 0 || !scenarios.TryGetValue(args[0], out var scenario))
{
    Console.Error.WriteLine("usage: Drakkar.Bench <scenario> [BenchmarkDotNet options, e.g. --job short]");
    Console.Error.WriteLine("scenarios:");
    foreach (var (name, (_, description)) in scenarios) Console.Error.WriteLine($"  {name,-8} {description}");
    return 2;
}

BenchmarkRunner.Run(scenario.Benchmarks, args: args[1..]);
return 0;
