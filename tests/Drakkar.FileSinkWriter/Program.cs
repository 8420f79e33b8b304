using System.Globalization;
using Drakkar;
using Drakkar.Sinks;
using Drakkar.Sinks.Filesystem;

// Usage: Drakkar.FileSinkWriter <base_path> <relative file> <writer id> <lines> <lines per batch> <go file>
// Waits until <go file> exists (so several writers start together), then appends <lines> JSON lines through FileSink.
if (args.Length != 6)
{
    Console.Error.WriteLine("usage: Drakkar.FileSinkWriter <base_path> <file> <writer> <lines> <per-batch> <go-file>");
    return 2;
}

var (basePath, file, writer) = (args[0], args[1], args[2]);
var lines = int.Parse(args[3], CultureInfo.InvariantCulture);
var perBatch = int.Parse(args[4], CultureInfo.InvariantCulture);
var sink = new FileSink("files", new FileSinkConfig { BasePath = basePath });
await sink.ConnectAsync(default);
while (!File.Exists(args[5])) await Task.Delay(5);

var pad = new string('p', 200);
for (var start = 0; start < lines; start += perBatch)
{
    var payloads = new List<SinkPayload>();
    for (var seq = start; seq < Math.Min(lines, start + perBatch); seq++) payloads.Add(FilePayload.Of(file, new WrittenLine(writer, seq, pad)));
    await sink.DeliverAsync(new SinkBatch("t", 0, payloads), default);
}
await sink.CloseAsync(default);
return 0;

[Payload]
public sealed partial record WrittenLine(string Writer, int Seq, string Pad);
