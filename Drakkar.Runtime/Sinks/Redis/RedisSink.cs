using System.Buffers;
using System.Text.Json;

namespace Drakkar.Sinks.Redis;

/// <summary>
/// <c>SET {key_prefix}{key} {json} [EX ttl]</c> for each payload, pipelined per batch over one RESP connection
/// (SPEC S11). Write-replace, hence idempotent. A dropped connection fails the batch as transient and the next
/// attempt reconnects (with AUTH and SELECT from the URL).
/// </summary>
internal sealed class RedisSink : ConnectedSink<RespConnection>
{
    private readonly RedisSinkConfig _config;
    private readonly RedisEndpoint _endpoint;
    private readonly ArrayBufferWriter<byte> _json = new(1024);

    internal RedisSink(string name, RedisSinkConfig config, SinkSecretMasker masker) : base(name)
    {
        _config = config;
        _endpoint = RedisEndpoint.Parse(config.Url, $"sinks.redis.{name}");
        masker.AddCredentialsOf(config.Url);
        masker.Add(_endpoint.Password);
    }

    public override string Kind => "redis";
    public override bool IsIdempotent => true;
    protected override string Destination => $"Redis at {_endpoint.Host}:{_endpoint.Port}";

    protected override Task<RespConnection> OpenAsync(CancellationToken cancellationToken) =>
        RespConnection.OpenAsync(_endpoint, cancellationToken);

    protected override async ValueTask DeliverAsync(RespConnection connection, SinkBatch batch, CancellationToken cancellationToken)
    {
        try
        {
            foreach (var payload in batch.Payloads)
            {
                var redis = (RedisPayload)payload;
                _json.ResetWrittenCount();
                using (var writer = new Utf8JsonWriter(_json)) redis.Data.WriteJson(writer);
                connection.Set(_config.KeyPrefix + redis.Key, _json.WrittenSpan, redis.Ttl is { } ttl ? (long)Math.Ceiling(ttl.TotalSeconds) : null);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A payload that cannot be written (its data has no JSON form) fails the batch before anything is sent;
            // the SETs already buffered must not ride along with the next batch, so the connection starts clean.
            await DropAsync().ConfigureAwait(false);
            throw new SinkDeliveryException($"a payload cannot be written as JSON: {e.Message}", e);
        }
        string? error;
        try
        {
            error = await connection.FlushAndReadAsync(batch.Count, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            await DropAsync().ConfigureAwait(false);
            throw new SinkTransientException($"Redis connection to {_endpoint.Host}:{_endpoint.Port} lost: {e.Message}", e);
        }
        catch (OperationCanceledException)
        {
            // Replies of a half-read pipeline would be attributed to the next batch; start clean.
            await DropAsync().ConfigureAwait(false);
            throw;
        }
        if (error is not null)
        {
            var text = $"Redis refused a SET: {error}";
            throw error.StartsWith("LOADING", StringComparison.Ordinal) || error.StartsWith("BUSY", StringComparison.Ordinal) || error.StartsWith("TRYAGAIN", StringComparison.Ordinal)
                ? new SinkTransientException(text)
                : new SinkDeliveryException(text);
        }
    }
}
