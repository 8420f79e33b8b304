using System.Buffers;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using StackExchange.Redis.KeyspaceIsolation;

namespace Drakkar.Sinks.Redis;

/// <summary>
/// <c>MSET</c> for each run of payloads without a ttl and <c>SET {key_prefix}{key} {json} EX ttl</c> for the others,
/// pipelined per batch (one client batch, awaited through its last command) over one StackExchange.Redis multiplexer
/// (SPEC S11). Write-replace, hence idempotent. Each payload has its own outcome: a SET the server refuses fails only
/// its payload, a refused MSET is written again key by key; a lost connection or a timeout fails the batch as transient. The multiplexer reconnects on its
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
    /// <summary>Keys one MSET takes at most: a longer run of payloads without a ttl is split.</summary>
    private const int MaxKeysPerMset = 1024;
    /// <summary>Value bytes one MSET takes at most (it may go over by its last value), so the server never holds one huge command.</summary>
    private const int MaxBytesPerMset = 1 << 20;
    /// <summary>Whether runs of payloads without a ttl go as one MSET: not on a cluster (keys of one MSET must share a slot), nor once the server refused MSET to this user.</summary>
    private bool _multiKeySet;
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

    /// <summary>
    /// The client's connection or timeout error in a line: what failed and how (<c>No connection is active/available to
    /// service this operation: MSET; SocketClosed on host:port/Interactive, …</c>), without the diagnostics it appends as
    /// <c>, key: value</c> pairs (about 800 characters of thread-pool state, counters and its version, in every log line
    /// and DLQ record of an outage), and without its advice to set <c>abortConnect=false</c>: that is a client option
    /// Drakkar sets itself (startup fails fast by design), and the URL refuses it.
    /// </summary>
    internal static string Brief(string? message)
    {
        message ??= "";
        if (message.IndexOf(" To allow this multiplexer to continue retrying", StringComparison.Ordinal) is var advice and >= 0) message = message[..advice];
        return ClientDiagnostics().Match(message) is { Success: true } diagnostics ? message[..diagnostics.Index] : message;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@", [A-Za-z][A-Za-z-]*: ")]
    private static partial System.Text.RegularExpressions.Regex ClientDiagnostics();

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
            throw new SinkTransientException($"cannot connect to {Destination}: {Brief(e.Message)}", e);
        }
        multiplexer.ConnectionFailed += OnConnectionFailed;
        multiplexer.ConnectionRestored += OnConnectionRestored;
        // The client writes the prefix's bytes before each key, so no prefixed key string is built per SET.
        _database = multiplexer.GetDatabase().WithKeyPrefix(_config.KeyPrefix);
        _multiKeySet = !multiplexer.GetServers().Any(server => server.ServerType == ServerType.Cluster);
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
        using (var writer = new Utf8JsonWriter(json, Serialization.JsonOutput.Compact))
        {
            for (var i = 0; i < payloads.Count; i++)
            {
                if (KeyRefusal((RedisPayload)payloads[i]) is { } refusal)
                {
                    // Built from the data in a hook: refused here, with the payload kept for the DLQ, rather than in
                    // the hook, where it would take the task's other results with it.
                    batch.Fail(i, new SinkDeliveryException($"payload {i + 1} of {payloads.Count} ({payloads[i].Data.TypeName}) {refusal}"));
                    continue;
                }
                try
                {
                    writer.Reset();
                    var start = json.WrittenCount;
                    payloads[i].Data.WriteJson(writer);
                    writer.Flush();
                    ranges[i] = start..json.WrittenCount;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    batch.Fail(i, SinkDeliveryException.Unwritable(batch, i, "JSON", e));
                }
            }
        }

        Volatile.Write(ref _jsonBytesPerPayload, json.WrittenCount / payloads.Count + JsonSizeSlack);
        var refused = await WriteAsync(database, batch, json.WrittenMemory, ranges, 0, Volatile.Read(ref _multiKeySet), cancellationToken).ConfigureAwait(false);
        // A refused MSET does not say which of its keys the server objects to (an ACL key pattern, an OOM…), so its
        // payloads are written again one SET each: every payload gets its own outcome, and only a refused one fails.
        // Everything after it is written again too (write-replace), so a key set twice in the batch still ends with
        // its later value.
        if (refused is { } from)
            await WriteAsync(database, batch, json.WrittenMemory, ranges, from, multiKey: false, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes the payloads from <paramref name="first"/> on (skipping failed ones) as one client batch, in payload order:
    /// with <paramref name="multiKey"/>, each run of consecutive payloads without a ttl is one <c>MSET</c> (up to
    /// <see cref="MaxKeysPerMset"/> keys or <see cref="MaxBytesPerMset"/> of values), every other payload a
    /// <c>SET</c>. A SET the server refuses fails its payload; the first payload of the first refused MSET is
    /// returned, to be written again from there key by key; a lost connection, a timeout or a "not now" reply fails the batch as transient.
    /// </summary>
    private async ValueTask<int?> WriteAsync(IDatabase database, SinkBatch batch, ReadOnlyMemory<byte> values, Range[] ranges,
        int first, bool multiKey, CancellationToken cancellationToken)
    {
        var payloads = batch.Payloads;
        var writes = new List<Write>(multiKey ? 4 : payloads.Count);
        try
        {
            // A client batch hands all commands to the connection at once (one lock, one flush) instead of one by one.
            var pipeline = database.CreateBatch();
            for (var i = first; i < payloads.Count;)
            {
                if (batch.FailureOf(i) is not null)
                {
                    i++;
                    continue;
                }
                var redis = (RedisPayload)payloads[i];
                var run = multiKey ? RunWithoutTtl(batch, ranges, i) : 1;
                if (run < 2)
                {
                    writes.Add(new(i, 1, pipeline.StringSetAsync(redis.Key, values[ranges[i]], redis.Ttl, When.Always)));
                    i++;
                    continue;
                }
                var pairs = new KeyValuePair<RedisKey, RedisValue>[run];
                for (var k = 0; k < run; k++)
                    pairs[k] = new(((RedisPayload)payloads[i + k]).Key, values[ranges[i + k]]);
                writes.Add(new(i, run, pipeline.StringSetAsync(pairs)));
                i += run;
            }
            pipeline.Execute();
        }
        catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException)
        {
            // With no server connected the batch is refused as it is handed over, not through its commands' tasks.
            throw new SinkTransientException($"{Destination} did not take the batch: {Brief(e.Message)}", e);
        }

        // Replies on a connection come back in order, so once the last command is answered the others usually are
        // too: waiting on that one task costs one continuation per batch, not one thread-pool hand-off per command
        // (which Task.WhenAll would cost). Any command still open after it (another server, a failure) is waited for in turn.
        for (var w = writes.Count - 1; w >= 0; w--)
        {
            if (writes[w].Reply is not { IsCompleted: false } open) continue;
            try
            {
                await open.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Each command's own outcome is read below.
            }
        }

        Exception? lost = null;
        int? refusedFrom = null;
        foreach (var (at, count, reply) in writes)
        {
            if (!reply.IsFaulted) continue;
            var error = reply.Exception!.GetBaseException();
            if (error is not RedisServerException refused || IsTransient(refused))
            {
                lost ??= error;
            }
            else if (count > 1)
            {
                refusedFrom ??= at;
                if (refused.Message.StartsWith("NOPERM", StringComparison.Ordinal) && refused.Message.Contains("'mset'", StringComparison.OrdinalIgnoreCase)
                    && Interlocked.Exchange(ref _multiKeySet, false))
                    LogMsetRefused(_logger, Name, _masker.Apply(refused.Message));
            }
            else
            {
                batch.Fail(at, new SinkDeliveryException($"Redis refused SET {_config.KeyPrefix}{((RedisPayload)payloads[at]).Key}: {refused.Message}", refused));
            }
        }
        if (lost is not null)
            throw new SinkTransientException($"{Destination} did not take the batch: {(lost is RedisServerException ? lost.Message : Brief(lost.Message))}", lost);
        return refusedFrom;
    }

    /// <summary>Why the sink refuses the payload's key (empty or blank; <c>key_prefix</c> does not make it valid), or null.</summary>
    internal static string? KeyRefusal(RedisPayload payload) =>
        string.IsNullOrWhiteSpace(payload.Key)
            ? $"has {(payload.Key.Length == 0 ? "an empty" : "a blank")} Redis key; nothing was written for it (check the key the hook builds)"
            : null;

    /// <summary>How many payloads from <paramref name="first"/> on one MSET takes: consecutive, not failed, without a ttl, within the MSET's bounds.</summary>
    private static int RunWithoutTtl(SinkBatch batch, Range[] ranges, int first)
    {
        var bytes = 0;
        var i = first;
        while (i < batch.Count && i - first < MaxKeysPerMset && bytes < MaxBytesPerMset
               && batch.FailureOf(i) is null && ((RedisPayload)batch.Payloads[i]).Ttl is null)
        {
            bytes += ranges[i].End.Value - ranges[i].Start.Value;
            i++;
        }
        return i - first;
    }

    /// <summary>One command of a client batch: the <paramref name="Count"/> payloads it writes from <paramref name="First"/> on, and its reply.</summary>
    private readonly record struct Write(int First, int Count, Task<bool> Reply);

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

    /// <summary>
    /// Replies that say "not now" rather than "never": loading, busy script, failover or resharding under way, or the
    /// server at its <c>maxmemory</c> with nothing to evict (<c>OOM</c>: it refuses every write, whatever the payload,
    /// until memory is freed or the limit raised; treated as bad data, a full Redis dead-lettered the whole stream).
    /// </summary>
    private static bool IsTransient(RedisServerException refused) =>
        refused.Message.StartsWith("LOADING", StringComparison.Ordinal)
        || refused.Message.StartsWith("OOM", StringComparison.Ordinal)
        || refused.Message.StartsWith("BUSY", StringComparison.Ordinal)
        || refused.Message.StartsWith("TRYAGAIN", StringComparison.Ordinal)
        || refused.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
        || refused.Message.StartsWith("CLUSTERDOWN", StringComparison.Ordinal)
        || refused.Message.StartsWith("READONLY", StringComparison.Ordinal);

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Interactive) return;
        Volatile.Write(ref _lostConnection, true);
        LogConnectionLost(_logger, Name, RedisOptions.Describe(e.EndPoint), e.FailureType, _masker.Apply(Brief(e.Exception?.Message)));
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Interactive) return;
        // "Again" only after a loss this sink logged: the client also reports its first connection this way.
        if (Volatile.Read(ref _lostConnection)) LogConnectionRestored(_logger, Name, RedisOptions.Describe(e.EndPoint));
        else LogConnected(_logger, Name, RedisOptions.Describe(e.EndPoint));
    }

    // Set once the connection was lost after the sink connected, so that a restored connection says "again".
    private bool _lostConnection;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis sink {Sink} lost its connection to {Endpoint} ({Failure}): {Error}; the worker is not ready until it is back")]
    private static partial void LogConnectionLost(ILogger logger, string sink, string endpoint, ConnectionFailureType failure, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis sink {Sink} may not run MSET ({Error}); it writes one SET per payload from now on (grant +mset for fewer, larger commands)")]
    private static partial void LogMsetRefused(ILogger logger, string sink, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis sink {Sink} is connected to {Endpoint}")]
    private static partial void LogConnected(ILogger logger, string sink, string endpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis sink {Sink} is connected to {Endpoint} again")]
    private static partial void LogConnectionRestored(ILogger logger, string sink, string endpoint);
}
