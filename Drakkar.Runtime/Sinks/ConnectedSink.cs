namespace Drakkar.Sinks;

/// <summary>
/// A sink that speaks its own protocol over one connection (Redis): calls are serialized, the connection is
/// opened on first need, dropped whenever a call may have left it mid-reply, and reopened by the next call.
/// </summary>
internal abstract class ConnectedSink<TConnection>(string name) : ISink where TConnection : class, IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private TConnection? _connection;

    public abstract string Kind { get; }
    public string Name { get; } = name;
    public abstract bool IsIdempotent { get; }
    public bool IsConnected => Volatile.Read(ref _connection) is not null;

    /// <summary>The destination as error messages name it, e.g. <c>Redis at host:6379</c>.</summary>
    protected abstract string Destination { get; }

    /// <summary>Connects, handshakes and authenticates.</summary>
    protected abstract Task<TConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>Writes the batch over an open connection; the caller holds the gate.</summary>
    protected abstract ValueTask DeliverAsync(TConnection connection, SinkBatch batch, CancellationToken cancellationToken);

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
            await DeliverAsync(connection, batch, cancellationToken).ConfigureAwait(false);
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

    /// <summary>Closes the connection; the next call opens a fresh one.</summary>
    protected async Task DropAsync()
    {
        if (Interlocked.Exchange(ref _connection, null) is { } connection)
            await connection.DisposeAsync().ConfigureAwait(false);
    }

    private async Task<TConnection> EnsureConnectedAsync(CancellationToken cancellationToken)
    {
        if (_connection is { } open) return open;
        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _connection, connection);
            return connection;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            throw new SinkTransientException($"cannot reach {Destination}: {e.Message}", e);
        }
    }
}
