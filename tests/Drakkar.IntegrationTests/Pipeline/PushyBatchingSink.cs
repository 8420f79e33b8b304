using System.Collections.Concurrent;
using Drakkar.Sinks;

namespace Drakkar.IntegrationTests.Pipeline;

/// <summary>
/// Buffers per partition and writes at checkpoints; its first flushes drop the partition's buffer and throw
/// <paramref name="refusal"/> (the contract lets it: the worker reprocesses what a failed flush held).
/// </summary>
internal sealed class PushyBatchingSink(int refusals, Func<Exception> refusal) : IBatchingSink
{
    private readonly ConcurrentDictionary<int, ConcurrentQueue<Marker>> _buffers = new();
    private readonly int _refusals = refusals;
    private int _refusalsLeft = refusals;

    public ConcurrentDictionary<(int, long), int> Written { get; } = new();
    /// <summary>When each refused flush happened (<see cref="System.Diagnostics.Stopwatch"/> timestamp) and for which partition.</summary>
    public ConcurrentQueue<(long At, int Partition)> Refusals { get; } = new();
    public int Refused => _refusals - Math.Max(0, Volatile.Read(ref _refusalsLeft));
    public string Kind => "pushy";
    public string Name => "main";
    public bool IsIdempotent => true;
    public bool IsConnected => true;
    public ValueTask ConnectAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var buffer = _buffers.GetOrAdd(batch.Partition, _ => new ConcurrentQueue<Marker>());
        foreach (var payload in batch.Payloads) buffer.Enqueue((Marker)payload.Data.Value);
        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(string topic, int partition, CancellationToken cancellationToken)
    {
        if (Interlocked.Decrement(ref _refusalsLeft) >= 0)
        {
            Refusals.Enqueue((System.Diagnostics.Stopwatch.GetTimestamp(), partition));
            _buffers.TryRemove(partition, out _);
            throw refusal();
        }
        if (_buffers.TryGetValue(partition, out var buffer))
            while (buffer.TryDequeue(out var marker)) Written.AddOrUpdate((marker.Partition, marker.Offset), 1, (_, n) => n + 1);
        return ValueTask.CompletedTask;
    }

    public void Discard(string topic, int partition) => _buffers.TryRemove(partition, out _);
}
