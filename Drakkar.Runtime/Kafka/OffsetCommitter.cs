using System.Collections.Concurrent;
using System.Globalization;
using Confluent.Kafka;
using Drakkar.Observability.Metrics;
using Drakkar.Pipeline;
using Drakkar.Sinks;
using Drakkar.Sinks.Kafka;
using Microsoft.Extensions.Logging;

namespace Drakkar.Kafka;

/// <summary>
/// The one owner of commits (SPEC O3, O9): every <c>kafka.commit_interval_ms</c>, and on demand at revoke and
/// shutdown, it flushes batching sinks for each partition whose watermark moved and commits the watermarks in one
/// call, serialized so an older offset never lands after a newer one. A flush that fails or pushes back abandons that
/// partition's checkpoint: the partition is queued for a rewind, which the poll thread carries out. Under
/// <c>kafka.exactly_once</c> the watermarks are committed inside the Kafka sinks' producer transaction instead of by
/// the consumer (SPEC O12), and an aborted transaction rewinds every partition it covered.
/// </summary>
internal sealed partial class OffsetCommitter(IConsumer<byte[]?, byte[]?> consumer, IPayloadDelivery delivery, DrakkarMetrics metrics, ILogger logger)
{
    /// <summary>How long a partition whose flush or transaction failed (without a delay of its own) waits before it is reprocessed.</summary>
    private static readonly TimeSpan FailedCheckpointPause = TimeSpan.FromSeconds(1);

    private const int FinalCommitAttempts = 5;
    private static readonly TimeSpan CommittedLookupTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan FinalCommitBackoff = TimeSpan.FromMilliseconds(100);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly System.Collections.Concurrent.ConcurrentQueue<int> _forgotten = new();
    private readonly ConcurrentQueue<(int Partition, TimeSpan Delay)> _rewinds = new();

    /// <summary>Commits every <paramref name="interval"/> until <paramref name="stop"/>.</summary>
    public async Task RunAsync(Func<IEnumerable<PartitionPipeline>> pipelines, TimeSpan interval, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            await CommitAsync(pipelines(), final: false).ConfigureAwait(false);
        }
    }

    /// <summary>Partitions whose checkpoint was abandoned, with how long to pause them; taken by the poll thread.</summary>
    public bool TryTakeRewind(out int partition, out TimeSpan delay)
    {
        var taken = _rewinds.TryDequeue(out var rewind);
        (partition, delay) = rewind;
        return taken;
    }

    /// <summary>
    /// Takes partitions this worker no longer owns out of <c>drakkar_offset_lag</c> at the start of the next commit
    /// round (their lag stayed at its last value, so a sum over the group's workers counted them twice). Call after
    /// their pipelines left the set the commit loop reads: a round that began before may still set their lag, one
    /// that begins after cannot (and sets it again for a partition assigned back meanwhile); waiting for the round
    /// here could hold a rebalance behind a slow flush.
    /// </summary>
    public void Forget(IEnumerable<int> partitions)
    {
        foreach (var partition in partitions) _forgotten.Enqueue(partition);
    }

    private void RemoveForgottenSeries()
    {
        while (_forgotten.TryDequeue(out var partition))
        {
            metrics.OffsetLag.Remove(partition.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>
    /// Commits every pipeline whose watermark moved. Returns false when the commit call itself failed (the
    /// watermarks are kept, so the next call tries again).
    /// </summary>
    public async Task<bool> CommitAsync(IEnumerable<PartitionPipeline> pipelines, bool final)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            RemoveForgottenSeries();
            var offsets = new List<(PartitionPipeline Pipeline, TopicPartitionOffset Offset)>();
            foreach (var pipeline in pipelines)
            {
                metrics.OffsetLag.Set(pipeline.Lag, pipeline.Partition.ToString(CultureInfo.InvariantCulture));
                if (pipeline.CommitCandidate() is not { } offset) continue;
                if (!await FlushAsync(pipeline).ConfigureAwait(false)) continue;
                offsets.Add((pipeline, new TopicPartitionOffset(pipeline.Topic, pipeline.Partition, offset)));
            }
            if (offsets.Count == 0) return true;
            if (delivery.Transaction is { } transaction)
            {
                if (!CommitInTransaction(transaction, offsets)) return false;
            }
            else if (!await CommitByConsumerAsync(offsets, final).ConfigureAwait(false)) return false;
            foreach (var (pipeline, offset) in offsets)
            {
                pipeline.ConfirmCommitted(offset.Offset.Value);
                metrics.OffsetsCommitted.Increment(pipeline.Partition.ToString(CultureInfo.InvariantCulture));
                metrics.Events.Committed(pipeline.Topic, pipeline.Partition, offset.Offset.Value);
            }
            if (final) LogCommitted(string.Join(", ", offsets.Select(o => $"{o.Offset.Partition.Value}@{o.Offset.Offset.Value}")));
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<bool> CommitByConsumerAsync(List<(PartitionPipeline Pipeline, TopicPartitionOffset Offset)> offsets, bool final)
    {
        // A periodic commit that fails is simply made again on the next tick. A final one (revoke, shutdown) has no
        // next tick: a refusal that a rebalance causes is retried a few times, or the next owner redoes the work.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                consumer.Commit(offsets.Select(o => o.Offset));
                return true;
            }
            catch (KafkaException e) when (final && attempt < FinalCommitAttempts && IsRetriable(e.Error.Code))
            {
                LogFinalCommitRetry(e.Error.Reason, attempt);
                await Task.Delay(FinalCommitBackoff).ConfigureAwait(false);
            }
            catch (KafkaException e)
            {
                // A refusal a rebalance or a coordinator move causes is expected and retried by the next tick; the
                // stack trace (always this committer) is left out either way.
                if (IsRetriable(e.Error.Code)) LogCommitDeferred(e.Error.Reason);
                else LogCommitFailed(e.Error.Reason, e.Error.Code);
                return false;
            }
        }
    }

    /// <summary>
    /// Commits the watermarks in one transaction with the Kafka sink records of the messages they cover. A failed
    /// transaction is aborted, so every partition in it is rewound and redone from the offset the group really has:
    /// a commit that timed out may still have landed, and redoing what it covered would repeat its records.
    /// </summary>
    private bool CommitInTransaction(KafkaTransaction transaction, List<(PartitionPipeline Pipeline, TopicPartitionOffset Offset)> offsets)
    {
        if (transaction.Commit([.. offsets.Select(o => o.Offset)], consumer.ConsumerGroupMetadata))
        {
            metrics.KafkaTransactions.Increment("committed");
            return true;
        }
        metrics.KafkaTransactions.Increment("aborted");
        ConfirmWhatTheGroupHas(offsets);
        foreach (var (pipeline, _) in offsets)
        {
            pipeline.AbandonCheckpoints();
            _rewinds.Enqueue((pipeline.Partition, FailedCheckpointPause));
        }
        return false;
    }

    /// <summary>Moves each pipeline's committed offset (where a rewind restarts) up to what the group coordinator stores.</summary>
    private void ConfirmWhatTheGroupHas(List<(PartitionPipeline Pipeline, TopicPartitionOffset Offset)> offsets)
    {
        try
        {
            var stored = consumer.Committed(offsets.Select(o => o.Offset.TopicPartition), CommittedLookupTimeout);
            foreach (var (pipeline, _) in offsets)
            {
                if (stored.FirstOrDefault(c => c.Partition.Value == pipeline.Partition) is { Offset.Value: >= 0 } committed)
                    pipeline.ConfirmCommitted(committed.Offset.Value);
            }
        }
        catch (KafkaException e)
        {
            // Unknown: the rewind goes to the last commit this worker saw succeed, at worst repeating a landed commit's work.
            LogCommittedLookupFailed(e.Error.Reason);
        }
    }

    /// <summary>Batching sinks write what they buffered for the partition first; false abandons this checkpoint (SPEC O9).</summary>
    private async Task<bool> FlushAsync(PartitionPipeline pipeline)
    {
        try
        {
            await delivery.FlushAsync(pipeline.Topic, pipeline.Partition, CancellationToken.None).ConfigureAwait(false);
            return true;
        }
        catch (SinkBackpressureException e)
        {
            pipeline.AbandonCheckpoints();
            _rewinds.Enqueue((pipeline.Partition, e.RetryAfter));
        }
        catch (Exception e)
        {
            LogFlushFailed(e, pipeline.Topic, pipeline.Partition);
            pipeline.AbandonCheckpoints();
            _rewinds.Enqueue((pipeline.Partition, FailedCheckpointPause));
        }
        return false;
    }

    /// <summary>Refusals a rebalance or a broker blip causes, which the same commit may pass a moment later.</summary>
    private static bool IsRetriable(ErrorCode code) => code is ErrorCode.RebalanceInProgress or ErrorCode.IllegalGeneration
        or ErrorCode.NotCoordinatorForGroup or ErrorCode.GroupLoadInProgress or ErrorCode.RequestTimedOut
        or ErrorCode.Local_TimedOut or ErrorCode.Local_Transport or ErrorCode.Local_WaitCoord;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Final offset commit refused ({Reason}), attempt {Attempt}; trying again")]
    private partial void LogFinalCommitRetry(string reason, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Flush before committing {Topic}[{Partition}] failed; the partition is reprocessed from its committed offset")]
    private partial void LogFlushFailed(Exception error, string topic, int partition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "After an aborted transaction the group's committed offsets could not be read ({Reason}); rewinding to the last commit seen")]
    private partial void LogCommittedLookupFailed(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Committed offsets {Offsets}")]
    private partial void LogCommitted(string offsets);

    [LoggerMessage(Level = LogLevel.Information, Message = "Offset commit deferred ({Reason}); the next commit carries these offsets")]
    private partial void LogCommitDeferred(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Offset commit failed: {Reason} ({Code}); will retry")]
    private partial void LogCommitFailed(string reason, ErrorCode code);
}
