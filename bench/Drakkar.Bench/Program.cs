// Scenarios are added by the benchmark issue; each runs against its baseline in the same process run.
return args switch
{
    ["sinks", .. var rest] => await Drakkar.Bench.Sinks.SinkThroughput.RunAsync(rest),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Drakkar.Bench <scenario>\n  sinks [seconds]   delivered payloads/s per sink kind against local servers");
    return 2;
}
