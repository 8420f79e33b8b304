using System.Text;
using Confluent.Kafka;
using Drakkar;
using Drakkar.Hosting;
using Xunit;

namespace DrakkarWorker.Tests;

// These tests run the example WordCountHandler end to end on the embedded broker. When you replace the handler, change
// them with it (the same pattern works for any handler: a DrakkarConfig, WorkerHost.StartAsync, produce, assert on what
// the sinks wrote), or delete them.

public sealed class WordCountHandlerTests : IDisposable
{
    private readonly string _results = Directory.CreateTempSubdirectory("word-count-").FullName;

    /// <summary>The whole worker in this process: the embedded broker, real <c>wc</c> runs, the real file sink.</summary>
    [Fact]
    public async Task Each_document_gets_one_line_with_its_word_count()
    {
        var config = new DrakkarConfig
        {
            Kafka = { Brokers = WorkerHost.EmbeddedBrokers, SourceTopic = "documents", ConsumerGroup = "word-count-test", CommitIntervalMs = 200 },
            Executor = { BinaryPath = "/usr/bin/wc", MaxExecutors = 2, WindowSize = 10, TaskTimeoutSeconds = 30 },
            Sinks = { Filesystem = { ["results"] = new FileSinkConfig { BasePath = _results } } },
            Metrics = { Enabled = false },
        };
        await using var worker = await WorkerHost.StartAsync(new WordCountHandler(), config);

        string[] texts = ["one", "two words", "the third has four", "", "five words in this one"];
        using (var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = worker.Config.Kafka.Brokers }).Build())
        {
            for (var i = 0; i < texts.Length; i++)
            {
                var document = new Document($"doc-{i}", texts[i]);
                producer.Produce(new TopicPartition(config.Kafka.SourceTopic, 0), new Message<byte[], byte[]>
                {
                    Key = Encoding.UTF8.GetBytes(document.Id),
                    Value = PayloadData.Of(document).ToJsonBytes(),
                });
            }
            // Not a document: kept in undecodable.jsonl with the reason, not dropped.
            producer.Produce(new TopicPartition(config.Kafka.SourceTopic, 0), new Message<byte[], byte[]> { Value = "not json"u8.ToArray() });
            producer.Flush(TimeSpan.FromSeconds(10));
        }

        var path = Path.Combine(_results, WordCountHandler.CountsFile);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (LineCount(path) < texts.Length && DateTime.UtcNow < deadline) await Task.Delay(100);

        var lines = File.ReadAllLines(path).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(
            ["{\"id\":\"doc-0\",\"words\":1}", "{\"id\":\"doc-1\",\"words\":2}", "{\"id\":\"doc-2\",\"words\":4}",
             "{\"id\":\"doc-3\",\"words\":0}", "{\"id\":\"doc-4\",\"words\":5}"],
            lines);
        var undecodable = Path.Combine(_results, WordCountHandler.UndecodableFile);
        while (LineCount(undecodable) < 1 && DateTime.UtcNow < deadline) await Task.Delay(100);
        var kept = Assert.Single(File.ReadAllLines(undecodable));
        Assert.StartsWith("{\"topic\":\"documents\",\"partition\":0,\"offset\":5,\"error\":", kept, StringComparison.Ordinal);
    }

    private static int LineCount(string path) => File.Exists(path) ? File.ReadAllLines(path).Length : 0;

    public void Dispose() => Directory.Delete(_results, recursive: true);
}
