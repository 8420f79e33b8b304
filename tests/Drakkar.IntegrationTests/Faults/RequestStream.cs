using Confluent.Kafka;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// The input of the sample-worker scenarios: search requests <c>{request_id: "r-N", pattern: "drakkar", path}</c>
/// produced round-robin onto a topic's partitions at a steady pace in the background, until stopped.
/// </summary>
internal sealed class RequestStream : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _producing;
    private int _produced;

    public RequestStream(string brokers, string topic, int partitions, string corpus, TimeSpan pace)
    {
        _producing = Task.Run(async () =>
        {
            using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = brokers, LingerMs = 1 }).Build();
            while (!_stop.IsCancellationRequested)
            {
                var i = _produced;
                producer.Produce(new TopicPartition(topic, i % partitions), new Message<string, string>
                {
                    Key = $"r-{i}", Value = $$"""{"request_id":"r-{{i}}","pattern":"drakkar","path":"{{corpus}}"}""",
                });
                Interlocked.Increment(ref _produced);
                await Task.Delay(pace);
            }
            producer.Flush(TimeSpan.FromSeconds(60));
        });
    }

    /// <summary>Requests r-0 … r-(Produced − 1) have been handed to the producer.</summary>
    public int Produced => Volatile.Read(ref _produced);

    /// <summary>Stops producing, waits until everything produced is on the broker, and returns how many requests that is.</summary>
    public async Task<int> StopAsync()
    {
        if (!_stop.IsCancellationRequested) await _stop.CancelAsync();
        await _producing;
        return Produced;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }
}
