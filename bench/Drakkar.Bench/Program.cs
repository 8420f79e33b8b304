// Scenarios are added by the benchmark issue; each runs against its baseline in the same process run.
Console.Error.WriteLine("usage: Drakkar.Bench <scenario>  (no scenarios yet)");
return 2;
