using System.Buffers;
using System.Buffers.Text;
using System.Net.Sockets;
using System.Text;

namespace Drakkar.Sinks.Redis;

/// <summary>
/// One RESP2 connection. Commands are written into one buffer and sent together; replies are read back in order
/// (pipelining), so a batch costs one round trip. Not thread-safe: the sink serializes its use.
/// </summary>
internal sealed class RespConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly ArrayBufferWriter<byte> _out = new(4096);
    private byte[] _in = new byte[16 * 1024];
    private int _inStart;
    private int _inEnd;

    private RespConnection(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public static async Task<RespConnection> OpenAsync(RedisEndpoint endpoint, CancellationToken cancellationToken)
    {
        var socket = await TcpSocket.ConnectAsync(endpoint.Host, endpoint.Port, cancellationToken).ConfigureAwait(false);
        var connection = new RespConnection(socket);
        try
        {
            if (endpoint.Password is not null)
            {
                if (endpoint.User is null) connection.Command("AUTH", endpoint.Password);
                else connection.Command("AUTH", endpoint.User, endpoint.Password);
            }
            if (endpoint.Database != 0) connection.Command("SELECT", endpoint.Database.ToString(System.Globalization.CultureInfo.InvariantCulture));
            connection.Command("PING");
            var replies = 1 + (endpoint.Password is null ? 0 : 1) + (endpoint.Database != 0 ? 1 : 0);
            var error = await connection.FlushAndReadAsync(replies, cancellationToken).ConfigureAwait(false);
            if (error is not null) throw new SinkDeliveryException($"Redis refused the connection setup: {error}");
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Queues one command (an array of bulk strings).</summary>
    public void Command(params ReadOnlySpan<string> args)
    {
        Header('*', args.Length);
        foreach (var arg in args) BulkText(arg);
    }

    /// <summary>Queues <c>SET key value [EX seconds]</c> with the value already UTF-8.</summary>
    public void Set(string key, ReadOnlySpan<byte> value, long? expireSeconds)
    {
        Header('*', expireSeconds is null ? 3 : 5);
        Bulk("SET"u8);
        BulkText(key);
        Bulk(value);
        if (expireSeconds is { } seconds)
        {
            Bulk("EX"u8);
            Span<byte> digits = stackalloc byte[20];
            Utf8Formatter.TryFormat(seconds, digits, out var written);
            Bulk(digits[..written]);
        }
    }

    /// <summary>Sends what is queued and reads <paramref name="replies"/> replies; returns the first error reply, if any.</summary>
    public async Task<string?> FlushAndReadAsync(int replies, CancellationToken cancellationToken)
    {
        await _stream.WriteAsync(_out.WrittenMemory, cancellationToken).ConfigureAwait(false);
        _out.ResetWrittenCount();
        string? firstError = null;
        for (var i = 0; i < replies; i++)
        {
            var error = await ReadReplyAsync(cancellationToken).ConfigureAwait(false);
            firstError ??= error;
        }
        return firstError;
    }

    /// <summary>Reads one reply (skipping its content) and returns its text when it is an error.</summary>
    private async Task<string?> ReadReplyAsync(CancellationToken cancellationToken)
    {
        var line = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
        switch (line[0])
        {
            case '+':
            case ':':
                return null;
            case '-':
                return line[1..];
            case '$':
                var length = int.Parse(line.AsSpan(1), provider: System.Globalization.CultureInfo.InvariantCulture);
                if (length >= 0) await SkipAsync(length + 2, cancellationToken).ConfigureAwait(false);
                return null;
            case '*':
                var count = int.Parse(line.AsSpan(1), provider: System.Globalization.CultureInfo.InvariantCulture);
                string? error = null;
                for (var i = 0; i < count; i++) error ??= await ReadReplyAsync(cancellationToken).ConfigureAwait(false);
                return error;
            default:
                throw new IOException($"Redis sent an unexpected reply: {line}");
        }
    }

    private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var buffered = _in.AsSpan(_inStart, _inEnd - _inStart);
            var newline = buffered.IndexOf("\r\n"u8);
            if (newline >= 0)
            {
                var line = Encoding.UTF8.GetString(buffered[..newline]);
                _inStart += newline + 2;
                return line;
            }
            await FillAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task SkipAsync(int count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            if (_inEnd == _inStart) await FillAsync(cancellationToken).ConfigureAwait(false);
            var take = Math.Min(count, _inEnd - _inStart);
            _inStart += take;
            count -= take;
        }
    }

    private async Task FillAsync(CancellationToken cancellationToken)
    {
        if (_inStart > 0)
        {
            _in.AsSpan(_inStart, _inEnd - _inStart).CopyTo(_in);
            _inEnd -= _inStart;
            _inStart = 0;
        }
        if (_inEnd == _in.Length) Array.Resize(ref _in, _in.Length * 2);
        var read = await _stream.ReadAsync(_in.AsMemory(_inEnd), cancellationToken).ConfigureAwait(false);
        if (read == 0) throw new IOException("Redis closed the connection");
        _inEnd += read;
    }

    private void Header(char kind, long number)
    {
        var span = _out.GetSpan(24);
        span[0] = (byte)kind;
        Utf8Formatter.TryFormat(number, span[1..], out var written);
        span[1 + written] = (byte)'\r';
        span[2 + written] = (byte)'\n';
        _out.Advance(written + 3);
    }

    private void Bulk(ReadOnlySpan<byte> value)
    {
        Header('$', value.Length);
        var span = _out.GetSpan(value.Length + 2);
        value.CopyTo(span);
        span[value.Length] = (byte)'\r';
        span[value.Length + 1] = (byte)'\n';
        _out.Advance(value.Length + 2);
    }

    private void BulkText(string value)
    {
        var size = Encoding.UTF8.GetByteCount(value);
        Header('$', size);
        var span = _out.GetSpan(size + 2);
        Encoding.UTF8.GetBytes(value, span);
        span[size] = (byte)'\r';
        span[size + 1] = (byte)'\n';
        _out.Advance(size + 2);
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket.Dispose();
    }
}
