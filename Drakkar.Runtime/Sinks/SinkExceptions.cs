using System.Net.Http;
using System.Net.Sockets;
using Confluent.Kafka;
using Npgsql;

namespace Drakkar.Sinks;

/// <summary>A delivery failure a quick retry may fix (connection lost, timeout, destination briefly unavailable).</summary>
public class SinkTransientException : Exception
{
    public SinkTransientException(string message) : base(message)
    {
    }

    public SinkTransientException(string message, Exception inner) : base(message, inner)
    {
    }
}

/// <summary>
/// A sink asks the framework to leave a partition alone for <see cref="RetryAfter"/> (SPEC O9, the Quix
/// <c>SinkBackpressureError</c>). This is not a failure: nothing is dead-lettered or counted against the circuit
/// breaker. Thrown from <see cref="IBatchingSink.FlushAsync"/>, the checkpoint is abandoned: the worker pauses the
/// partition, rewinds it to the committed offset and reprocesses it after the delay. Thrown from
/// <see cref="ISink.DeliverAsync"/>, it means "slow down": the same batch is tried again after the delay. Either way
/// nothing is committed unwritten and nothing is lost.
/// </summary>
public sealed class SinkBackpressureException : Exception
{
    public SinkBackpressureException(TimeSpan retryAfter, string? reason = null)
        : base(reason ?? $"sink asked to retry after {retryAfter.TotalSeconds:0.###}s")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retryAfter, TimeSpan.Zero);
        RetryAfter = retryAfter;
    }

    public TimeSpan RetryAfter { get; }
}

/// <summary>The sinks configuration cannot work (a declared sink is missing, a plugin kind is unknown, a value is invalid).</summary>
public sealed class SinkConfigurationException(string message) : Exception(message);

/// <summary>A sink could not connect at startup; the worker must not start.</summary>
public sealed class SinkStartupException(string message, Exception inner) : Exception(message, inner);

/// <summary>A payload names a sink instance that does not exist, or leaves the name empty when several do.</summary>
public sealed class SinkRoutingException(string message) : Exception(message);

/// <summary>Tells transient failures (worth a quick retry on an idempotent sink) from the rest.</summary>
public static class TransientErrors
{
    /// <summary>
    /// Connection, I/O and timeout failures are transient; everything else (bad payload, constraint violation,
    /// programming error) is not, because repeating it cannot change the outcome.
    /// </summary>
    public static bool IsTransient(Exception error) => error switch
    {
        SinkTransientException => true,
        SinkBackpressureException => false,
        Http.HttpSinkException http => http.IsTransient,
        // A refusal by definition, whatever its cause was (a timeout judged the payloads' fault, say).
        SinkDeliveryException => false,
        TimeoutException or IOException or SocketException => true,
        // HttpClient reports its own timeout as a cancellation the caller did not ask for.
        TaskCanceledException { InnerException: TimeoutException } => true,
        HttpRequestException { StatusCode: null } => true,
        NpgsqlException npgsql => npgsql.IsTransient,
        KafkaException kafka => IsTransient(kafka.Error.Code),
        _ => error.InnerException is { } inner && error is not AggregateException && IsTransient(inner),
    };

    private static bool IsTransient(ErrorCode code) => code is
        ErrorCode.Local_Transport or ErrorCode.Local_MsgTimedOut or ErrorCode.Local_TimedOut or
        ErrorCode.Local_AllBrokersDown or ErrorCode.BrokerNotAvailable or ErrorCode.NetworkException or
        ErrorCode.RequestTimedOut or ErrorCode.NotLeaderForPartition or ErrorCode.LeaderNotAvailable or
        ErrorCode.NotEnoughReplicas or ErrorCode.NotEnoughReplicasAfterAppend or ErrorCode.Local_QueueFull;
}

/// <summary>A destination refused payloads for a reason a retry will not fix (bad data, HTTP 4xx, constraint violation); the message says why.</summary>
public class SinkDeliveryException : Exception
{
    public SinkDeliveryException(string message) : base(message)
    {
    }

    public SinkDeliveryException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>
    /// The failure of payload <paramref name="index"/> of <paramref name="batch"/>, whose data has no
    /// <paramref name="form"/> ("JSON", "BSON"): <paramref name="error"/> is what the writer threw, for which
    /// <see cref="PayloadData.IsUnwritable"/> holds. Pass it to <see cref="SinkBatch.Fail"/>.
    /// </summary>
    public static SinkDeliveryException Unwritable(SinkBatch batch, int index, string form, Exception error)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(error);
        return new($"payload {index + 1} of {batch.Count} ({batch.Payloads[index].Data.TypeName}) cannot be written as {form}: {error.Message}", error);
    }
}
