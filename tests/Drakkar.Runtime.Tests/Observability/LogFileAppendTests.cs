using Drakkar.Observability.Logging;

namespace Drakkar.Runtime.Tests.Observability;

/// <summary>
/// <c>logging.output</c> naming one file for several workers (or one worker opening it twice): every line of every
/// writer must arrive whole, none overwritten by another writer's.
/// </summary>
public sealed class LogFileAppendTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-log-append-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Two_writers_of_one_log_file_append_every_line_whole()
    {
        const int lines = 2_000;
        var path = Path.Combine(_dir, "logs", "worker.log");
        var context = new LogContext("w-1", "g");
        using var first = LogSink.Open(path, context);
        using var second = LogSink.Open(path, context);

        // Lines of different lengths, written by both at once.
        static string Line(string writer, int i) => $"{writer} {i} " + new string('x', i % 300);
        await Task.WhenAll(
            Task.Run(() => { for (var i = 0; i < lines; i++) first.WriteLine(Line("a", i)); }),
            Task.Run(() => { for (var i = 0; i < lines; i++) second.WriteLine(Line("b", i)); }));

        var written = File.ReadAllLines(path);
        var expected = Enumerable.Range(0, lines).SelectMany(i => new[] { Line("a", i), Line("b", i) }).Order(StringComparer.Ordinal);
        Assert.Equal(expected, written.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_log_file_that_exists_is_appended_to()
    {
        var path = Path.Combine(_dir, "existing.log");
        File.WriteAllText(path, "before\n");
        using (var sink = LogSink.Open(path, new LogContext("w-1", "g"))) sink.WriteLine("after");
        Assert.Equal(["before", "after"], File.ReadAllLines(path));
    }
}
