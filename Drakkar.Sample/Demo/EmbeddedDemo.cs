using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Drakkar.Hosting;

namespace Drakkar.Sample.Demo;

/// <summary>
/// The sample's embedded default: with no configuration it starts the in-process Kafka broker, writes a small
/// corpus, feeds a few hundred generated search requests, shows progress while the worker processes them, and
/// prints a summary. Nothing outside the process is needed.
/// </summary>
internal static class EmbeddedDemo
{
    private const int Requests = 300;
    private static readonly string OutputDirectory = Path.Combine(Environment.CurrentDirectory, "drakkar-sample-output");

    public static DrakkarConfig Config()
    {
        Directory.CreateDirectory(OutputDirectory);
        return new DrakkarConfig
        {
            Kafka = { Brokers = WorkerHost.EmbeddedBrokers, SourceTopic = "search-requests", ConsumerGroup = "drakkar-sample", CommitIntervalMs = 200 },
            Executor = { MaxExecutors = Math.Max(2, Environment.ProcessorCount), WindowSize = 25, TaskTimeoutSeconds = 30 },
            Sinks = { Filesystem = { ["results"] = new FileSinkConfig { BasePath = OutputDirectory } } },
            Logging = { Level = "WARNING", Format = LogFormat.Console },
            Metrics = { Enabled = false },
        };
    }

    public static async Task<int> RunAsync(WorkerHost worker, CancellationToken cancellationToken)
    {
        var resultsPath = Path.Combine(OutputDirectory, SearchHandler.ResultsFile);
        File.Delete(resultsPath);
        var corpus = Corpus.Write(Path.Combine(OutputDirectory, "corpus"));
        var clock = Stopwatch.StartNew();
        Console.Error.WriteLine($"Drakkar sample: {Requests} search requests over {corpus.Count} files, {worker.Config.Executor.MaxExecutors} executors, embedded Kafka at {worker.Config.Kafka.Brokers}");
        Produce(worker.Config.Kafka.Brokers, worker.Config.Kafka.SourceTopic, corpus);

        // On a terminal the bar is redrawn in place; into a file or a pipe, a line at each quarter instead.
        var redraw = !Console.IsErrorRedirected;
        var done = 0;
        var quartersShown = 0;
        var lastProgress = Stopwatch.StartNew();
        while (done < Requests)
        {
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            var now = CountLines(resultsPath);
            if (now != done) lastProgress.Restart();
            done = now;
            if (redraw) Console.Error.Write($"\r{Progress(done, clock.Elapsed)}");
            else if (done * 4 / Requests > quartersShown)
            {
                quartersShown = done * 4 / Requests;
                Console.Error.WriteLine(Progress(done, clock.Elapsed));
            }
            if (lastProgress.Elapsed > TimeSpan.FromSeconds(60))
            {
                Console.Error.WriteLine($"{(redraw ? "\n" : "")}no progress for 60s ({done}/{Requests} done); giving up");
                return 1;
            }
        }
        if (redraw) Console.Error.WriteLine();
        PrintSummary(resultsPath, clock.Elapsed);
        return 0;
    }

    private static void Produce(string brokers, string topic, IReadOnlyList<string> corpus)
    {
        var random = new Random(7);
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = brokers, LingerMs = 5 }).Build();
        for (var i = 0; i < Requests; i++)
        {
            var word = Corpus.Words[random.Next(Corpus.Words.Length)];
            var pattern = i % 5 == 0 ? $"{word} {Corpus.Words[random.Next(Corpus.Words.Length)]}" : word;
            var request = new SearchRequest($"req-{i:D4}", pattern, corpus[i % corpus.Count]);
            producer.Produce(topic, new Message<byte[], byte[]>
            {
                Key = Encoding.UTF8.GetBytes(request.RequestId),
                Value = PayloadData.Of(request).ToJsonBytes(),
            });
        }
        producer.Flush(TimeSpan.FromSeconds(30));
    }

    private static string Progress(int done, TimeSpan elapsed)
    {
        const int width = 30;
        var filled = done * width / Requests;
        var rate = elapsed.TotalSeconds > 0 ? done / elapsed.TotalSeconds : 0;
        return $"  [{new string('#', filled)}{new string('-', width - filled)}] {done,4}/{Requests} requests  {rate,7:F1} req/s";
    }

    private static void PrintSummary(string resultsPath, TimeSpan elapsed)
    {
        var results = File.ReadAllLines(resultsPath).Select(ReadResult).ToList();
        var matches = results.Sum(r => r.MatchCount);
        var errors = results.Count(r => r.Error is not null);
        Console.Error.WriteLine($"""
            Done: {results.Count} requests in {elapsed.TotalSeconds:F2}s ({results.Count / elapsed.TotalSeconds:F1} req/s)
              matching lines found: {matches:N0}; requests with no match: {results.Count(r => r.MatchCount == 0)}; errors: {errors}
              results: {resultsPath}
              corpus:  {Path.Combine(OutputDirectory, "corpus")}
            """);
    }

    private static SearchResult ReadResult(string line)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(line));
        reader.Read();
        return SearchResult.ReadJson(ref reader);
    }

    private static int CountLines(string path)
    {
        if (!File.Exists(path)) return 0;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var count = 0;
        Span<byte> buffer = stackalloc byte[8192];
        int read;
        while ((read = stream.Read(buffer)) > 0) count += buffer[..read].Count((byte)'\n');
        return count;
    }
}
