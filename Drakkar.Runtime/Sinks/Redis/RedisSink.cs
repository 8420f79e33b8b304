using System.Buffers;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using StackExchange.Redis.KeyspaceIsolation;

namespace Drakkar.Sinks.Redis;

/// <summary>
/// <c>SET {key_prefix}{key} {json} [EX ttl]</c> for each payload, pipelined per batch (one client batch, awaited
/// through its last SET) over one StackExchange.Redis multiplexer (SPEC S11). Write-replace, hence idempotent. Each SET has its own outcome: one the server refuses fails
/// only its payload; a lost connection or a timeout fails the batch as transient. The multiplexer reconnects on its
/// own; while it is away SETs fail at once (see <see cref="RedisOptions"/>), and readiness follows its connection
/// events, so an idle worker notices a lost server.
/// </summary>
internal sealed partial class RedisSink : ISink
{
    private readonly RedisSinkConfig _config;
    private readonly ConfigurationOptions _options;
    private readonly SinkSecretMasker _masker;
    private readonly ILogger _logger;
    /// <summary>Bytes a value is expected to take beyond the previous batch's average, so a batch of alike payloads fits its first buffer.</summary>
    private const int JsonSizeSlack = 16;
    /// <summary>Past this a batch's buffer grows as it is written rather than being guessed from the previous batch.</summary>
    private const int MaxFirstJsonBuffer = 1 << 20;
    private int _jsonBytesPerPayload = 128;
    private ConnectionMultiplexer? _multiplexer;
    private IDatabase? _database;

    internal RedisSink(string name, RedisSinkConfig config, SinkSecretMasker masker, ILogger logger)
    {
        Name = name;
        _config = config;
        _options = RedisOptions.From(config, $"sinks.redis.{name}");
        _masker = masker;
        _logger = logger;
        masker.AddCredentialsOf(config.Url);
        masker.Add(_options.Password);
    }

    public string Kind => "redis";
    public string Name { get; }
    public bool IsIdempotent => true;

    /// <summary>Connected to at least one server: the multiplexer's state, which its connection events move.</summary>
    public bool IsConnected => Volatile.Read(ref _multiplexer) is { IsConnected: true };

    private string Destination => RedisOptions.Describe(_options);

    public async ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        if (_multiplexer is not null) return;
        var connecting = ConnectionMultiplexer.ConnectAsync(_options);
        ConnectionMultiplexer multiplexer;
        try
        {
            multiplexer = await connecting.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _ = connecting.ContinueWith(static done => done.Result.Dispose(), CancellationToken.None,
                TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            throw;
        }
        catch (RedisConnectionException e)
        {
            throw new SinkTransientException($"cannot connect to {Destination}: {e.Message}", e);
        }
        multiplexer.ConnectionFailed += OnConnectionFailed;
        multiplexer.ConnectionRestored += OnConnectionRestored;
        // The client writes the prefix's bytes before each key, so no prefixed key string is built per SET.
        _database = multiplexer.GetDatabase().WithKeyPrefix(_config.KeyPrefix);
        Volatile.Write(ref _multiplexer, multiplexer);
    }

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var database = _database ?? throw new InvalidOperationException($"redis sink '{Name}' delivers before it was connected");
        var payloads = batch.Payloads;
        if (payloads.Count == 0) return;

        // Every value is written first, into one buffer of its own: the client keeps the memory until the SET is on
        // the wire, which may be after this call gave up waiting (a timeout), so it is never reused. It is sized from
        // the previous batch's values, so it is allocated about once rather than grown or left mostly empty.
        var json = new ArrayBufferWriter<byte>((int)Math.Min((long)payloads.Count * Volatile.Read(ref _jsonBytesPerPayload), MaxFirstJsonBuffer));
        var ranges = new Range[payloads.Count];
        using (var writer = new Utf8JsonWriter(json))
        {
            for (var i = 0; i < payloads.Count; i++)
            {
                try
                {
                    writer.Reset();
                    var start = json.WrittenCount;
                    ((RedisPayload)payloads[i]).Data.WriteJson(writer);
                    writer.Flush();
                    ranges[i] = start..json.WrittenCount;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    batch.Fail(i, new SinkDeliveryException($"payload '{((RedisPayload)payloads[i]).Key}' cannot be written as JSON: {e.Message}", e));
                }
            }
        }

        Volatile.Write(ref _jsonBytesPerPayload, json.WrittenCount / payloads.Count + JsonSizeSlack);
        var values = json.WrittenMemory;
        var sets = new Task<bool>?[payloads.Count];
        try
        {
            // A client batch hands all SETs to the connection at once (one lock, one flush) instead of one by one.
            var pipeline = database.CreateBatch();
            for (var i = 0; i < payloads.Count; i++)
            {
                if (batch.FailureOf(i) is not null) continue;
                var redis = (RedisPayload)payloads[i];
                sets[i] = pipeline.StringSetAsync(redis.Key, values[ranges[i]], redis.Ttl, When.Always);
            }
            pipeline.Execute();
        }
        catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException)
        {
            // With no server connected the batch is refused as it is handed over, not through its SETs' tasks.
            throw new SinkTransientException($"{Destination} did not take the batch: {e.Message}", e);
        }

        // Replies on a connection come back in order, so once the last SET is answered the others usually are too:
        // waiting on that one task costs one continuation per batch, not one thread-pool hand-off per SET (which
        // Task.WhenAll would cost). Any SET still open after it (another server, a failure) is waited for in turn.
        for (var i = sets.Length - 1; i >= 0; i--)
        {
            if (sets[i] is not { IsCompleted: false } open) continue;
            try
            {
                await open.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Each SET's own outcome is read below.
            }
        }

        Exception? lost = null;
        for (var i = 0; i < sets.Length; i++)
        {
            if (sets[i] is not { IsFaulted: true } set) continue;
            var error = set.Exception!.GetBaseException();
            if (error is RedisServerException refused && !IsTransient(refused))
                batch.Fail(i, new SinkDeliveryException($"Redis refused SET {_config.KeyPrefix}{((RedisPayload)payloads[i]).Key}: {refused.Message}", refused));
            else
                lost ??= error;
        }
        if (lost is not null)
            throw new SinkTransientException($"{Destination} did not take the batch: {lost.Message}", lost);
    }

    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _multiplexer, null) is not { } multiplexer) return;
        _database = null;
        multiplexer.ConnectionFailed -= OnConnectionFailed;
        multiplexer.ConnectionRestored -= OnConnectionRestored;
        try
        {
            await multiplexer.CloseAsync(allowCommandsToComplete: true).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await multiplexer.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Replies that say "not now" rather than "never": loading, busy script, failover or resharding under way.</summary>
    private static bool IsTransient(RedisServerException refused) =>
        refused.Message.StartsWith("LOADING", StringComparison.Ordinal)
        || refused.Message.StartsWith("BUSY", StringComparison.Ordinal)
        || refused.Message.StartsWith("TRYAGAIN", StringComparison.Ordinal)
        || refused.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
        || refused.Message.StartsWith("CLUSTERDOWN", StringComparison.Ordinal)
        || refused.Message.StartsWith("READONLY", StringComparison.Ordinal);

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Interactive) return;
        LogConnectionLost(_logger, Name, RedisOptions.Describe(e.EndPoint), e.FailureType, _masker.Apply(e.Exception?.Message));
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Interactive) return;
        LogConnectionRestored(_logger, Name, RedisOptions.Describe(e.EndPoint));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis sink {Sink} lost its connection to {Endpoint} ({Failure}): {Error}; the worker is not ready until it is back")]
    private static partial void LogConnectionLost(ILogger logger, string sink, string endpoint, ConnectionFailureType failure, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis sink {Sink} is connected to {Endpoint} again")]
    private static partial void LogConnectionRestored(ILogger logger, string sink, string endpoint);
}
