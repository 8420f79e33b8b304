using System.Buffers;
using System.Text.Json;

namespace Drakkar.Sinks.Redis;

/// <summary>
/// <c>SET {key_prefix}{key} {json} [EX ttl]</c> for each payload, pipelined per batch over one RESP connection
/// (SPEC S11). Write-replace, hence idempotent. A dropped connection fails the batch as transient and the next
/// attempt reconnects (with AUTH and SELECT from the URL).
/// </summary>
public sealed class RedisSink : ISink
{
    private readonly RedisSinkConfig _config;
    private readonly RedisEndpoint _endpoint;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ArrayBufferWriter<byte> _json = new(1024);
    private RespConnection? _connection;

    internal RedisSink(string name, RedisSinkConfig config, SinkSecretMasker masker)
    {
        Name = name;
        _config = config;
        _endpoint = RedisEndpoint.Parse(config.Url, $"sinks.redis.{name}");
        masker.AddCredentialsOf(config.Url);
        masker.Add(_endpoint.Password);
    }

    public string Kind => "redis";
    public string Name { get; }
    public bool IsIdempotent => true;
    public bool IsConnected => Volatile.Read(ref _connection) is not null;

    public async ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureConnectedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var connection = await EnsureConnectedAsync(cancellationToken).ConfigureAwait(false);
            foreach (var payload in batch.Payloads)
            {
                var redis = (RedisPayload)payload;
                _json.ResetWrittenCount();
                using (var writer = new Utf8JsonWriter(_json)) redis.Data.WriteJson(writer);
                connection.Set(_config.KeyPrefix + redis.Key, _json.WrittenSpan, redis.Ttl is { } ttl ? (long)Math.Ceiling(ttl.TotalSeconds) : null);
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
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await DropAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<RespConnection> EnsureConnectedAsync(CancellationToken cancellationToken)
    {
        if (_connection is { } open) return open;
        try
        {
            var connection = await RespConnection.OpenAsync(_endpoint, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _connection, connection);
            return connection;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            throw new SinkTransientException($"cannot reach Redis at {_endpoint.Host}:{_endpoint.Port}: {e.Message}", e);
        }
    }

    private async Task DropAsync()
    {
        if (Interlocked.Exchange(ref _connection, null) is { } connection)
            await connection.DisposeAsync().ConfigureAwait(false);
    }
}
