using System.Net.Sockets;
using System.Text;

namespace Drakkar.IntegrationTests.Support;

/// <summary>A minimal RESP client for tests to look into Redis independently of the product's own client.</summary>
public sealed class Resp : IDisposable
{
    private readonly TcpClient _client;
    private readonly BufferedStream _stream;

    public Resp(int port)
    {
        _client = new TcpClient("127.0.0.1", port);
        _stream = new BufferedStream(_client.GetStream());
    }

    /// <summary>Sends one command and returns the reply as text (bulk nil as null, integers as digits).</summary>
    public string? Call(params string[] args)
    {
        var request = new StringBuilder().Append('*').Append(args.Length).Append("\r\n");
        foreach (var a in args) request.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        _stream.Write(Encoding.UTF8.GetBytes(request.ToString()));
        _stream.Flush();
        var line = ReadLine();
        switch (line[0])
        {
            case '+':
            case ':':
                return line[1..];
            case '-':
                throw new InvalidOperationException($"Redis error: {line[1..]}");
            case '$':
                var length = int.Parse(line[1..]);
                if (length < 0) return null;
                var buffer = new byte[length + 2];
                _stream.ReadExactly(buffer);
                return Encoding.UTF8.GetString(buffer, 0, length);
            default:
                throw new InvalidOperationException($"unexpected Redis reply: {line}");
        }
    }

    private string ReadLine()
    {
        var bytes = new List<byte>();
        while (true)
        {
            var b = _stream.ReadByte();
            if (b < 0) throw new IOException("Redis closed the connection");
            if (b == '\n' && bytes.Count > 0 && bytes[^1] == '\r') return Encoding.UTF8.GetString([.. bytes[..^1]]);
            bytes.Add((byte)b);
        }
    }

    public void Dispose()
    {
        _stream.Dispose();
        _client.Dispose();
    }
}
