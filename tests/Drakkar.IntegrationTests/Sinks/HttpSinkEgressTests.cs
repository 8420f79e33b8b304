using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.Sinks;
using Drakkar.Sinks.Http;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

/// <summary>Where the HTTP sink may send payloads, and how much of an answer it reads.</summary>
[Collection(SinksCollection.Name)]
public sealed class HttpSinkEgressTests(HttpReceiver receiver)
{
    private static SinkBatch Batch(int count = 1) => new("t", 0, Http(count).Http);

    private static Task<Exception?> Deliver(HttpSink sink) => DeliverOnceAsync(sink, Batch());

    [Fact]
    public async Task A_redirect_is_a_failure_naming_the_status_and_neither_key_nor_body_reach_the_other_host()
    {
        var stolenPath = $"/stolen-{Guid.NewGuid():N}";
        await using var redirector = new ScriptedHttpServer(async stream => await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 307 Temporary Redirect\r\nLocation: {receiver.Url.TrimEnd('/')}{stolenPath}\r\nContent-Length: 0\r\n\r\n")));
        var sink = new HttpSink("hook", new HttpSinkConfig { Url = redirector.Url, Headers = { ["X-Api-Key"] = "key-must-stay-home" } }, new SinkSecretMasker());

        var error = await Deliver(sink);

        Assert.NotNull(error);
        Assert.Contains("307", error.Message, StringComparison.Ordinal);
        Assert.Contains("redirect", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Single(redirector.Requests);
        Assert.DoesNotContain(receiver.Requests, r => r.Path == stolenPath);
    }

    [Fact]
    public async Task An_endless_error_body_is_read_only_up_to_a_bound_and_the_failure_names_the_status()
    {
        await using var server = new ScriptedHttpServer(async stream =>
        {
            await stream.WriteAsync("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"u8.ToArray());
            var chunk = Encoding.ASCII.GetBytes($"10000\r\n{new string('e', 0x10000)}\r\n");
            for (var i = 0; i < 16 * 1024; i++) await stream.WriteAsync(chunk); // up to 1 GiB unless the client stops reading
        });
        var sink = new HttpSink("hook", new HttpSinkConfig { Url = server.Url, TimeoutSeconds = 15 }, new SinkSecretMasker());

        var clock = Stopwatch.StartNew();
        var error = await Deliver(sink);

        var http = Assert.IsType<HttpSinkException>(error);
        Assert.Equal(500, http.Status);
        Assert.InRange(http.BodyExcerpt.Length, 1, 4 * 1024 + 1);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.True(server.BytesWritten < 64L << 20, $"the sink let the server send {server.BytesWritten >> 20} MiB");
    }

    [Theory]
    [InlineData("http://169.254.170.2/v2/credentials")]
    [InlineData("http://169.254.10.10/")]
    [InlineData("http://[fd00:ec2::254]/latest/meta-data/")]
    [InlineData("http://[fe80::1]/")]
    [InlineData("http://[::ffff:169.254.170.2]/")]
    public void Link_local_and_metadata_address_literals_are_refused_when_the_sink_is_built(string url)
    {
        var error = Assert.Throws<SinkConfigurationException>(() => new HttpSink("hook", new HttpSinkConfig { Url = url }, new SinkSecretMasker()));
        Assert.Contains("sinks.http.hook.url", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("169.254.169.254")]
    [InlineData("169.254.170.2")]
    [InlineData("fd00:ec2::254")]
    [InlineData("100.100.100.200")]
    [InlineData("192.0.0.192")]
    [InlineData("fe80::abcd")]
    public async Task A_name_that_resolves_to_a_metadata_or_link_local_address_is_refused_before_connecting(string address)
    {
        var sink = new HttpSink("hook", new HttpSinkConfig { Url = "http://169.254.169.254.nip.io/latest/meta-data/" }, new SinkSecretMasker(),
            resolve: (_, _) => Task.FromResult(new[] { IPAddress.Parse(address) }));

        var clock = Stopwatch.StartNew();
        var error = await Deliver(sink);

        Assert.IsAssignableFrom<SinkDeliveryException>(error);
        Assert.Contains("169.254.169.254.nip.io", error!.Message, StringComparison.Ordinal);
        Assert.Contains(IPAddress.Parse(address).ToString(), error.Message, StringComparison.Ordinal);
        Assert.Contains("refused", error.Message, StringComparison.Ordinal);
        Assert.False(TransientErrors.IsTransient(error));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed.TotalSeconds:0.0} s");
    }

    [Fact]
    public async Task A_name_that_resolves_to_loopback_needs_allow_loopback_while_a_literal_loopback_url_just_works()
    {
        await using var server = new ScriptedHttpServer(async stream => await stream.WriteAsync("HTTP/1.1 204 No Content\r\n\r\n"u8.ToArray()));
        var byName = $"http://hooks.internal.example:{server.Port}/in";
        Task<IPAddress[]> Loopback(string host, CancellationToken _) => Task.FromResult(new[] { IPAddress.Loopback });

        var refused = await Deliver(new HttpSink("hook", new HttpSinkConfig { Url = byName }, new SinkSecretMasker(), resolve: Loopback));
        Assert.IsAssignableFrom<SinkDeliveryException>(refused);
        Assert.Contains("allow_loopback", refused!.Message, StringComparison.Ordinal);
        Assert.Empty(server.Requests);

        Assert.Null(await Deliver(new HttpSink("hook", new HttpSinkConfig { Url = byName, AllowLoopback = true }, new SinkSecretMasker(), resolve: Loopback)));
        Assert.Null(await Deliver(new HttpSink("hook", new HttpSinkConfig { Url = server.Url }, new SinkSecretMasker())));
        Assert.Null(await Deliver(new HttpSink("hook", new HttpSinkConfig { Url = $"http://localhost:{server.Port}/in" }, new SinkSecretMasker())));
        Assert.Equal(3, server.Requests.Count);
        Assert.Equal($"hooks.internal.example:{server.Port}", server.Requests.First().Headers["Host"]);
    }
}

/// <summary>A raw HTTP/1.1 server on 127.0.0.1 that records each request and answers with a scripted response.</summary>
internal sealed class ScriptedHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<Stream, Task> _respond;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _bytesWritten;

    public ScriptedHttpServer(Func<Stream, Task> respond)
    {
        _respond = respond;
        _listener.Start();
        _loop = Task.Run(AcceptAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public string Url => $"http://127.0.0.1:{Port}/in";
    public ConcurrentQueue<ReceivedRequest> Requests { get; } = new();
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try { await _loop; } catch (OperationCanceledException) { }
        _listener.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        using var _ = socket;
        await using var stream = new CountingStream(new NetworkStream(socket, ownsSocket: false), this);
        try
        {
            var head = new StringBuilder();
            var one = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                if (await stream.ReadAsync(one) == 0) return;
                head.Append((char)one[0]);
            }
            var lines = head.ToString().Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
            var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
            var body = new byte[headers.TryGetValue("Content-Length", out var length) ? int.Parse(length, System.Globalization.CultureInfo.InvariantCulture) : 0];
            await stream.ReadExactlyAsync(body);
            var requestLine = lines[0].Split(' ');
            Requests.Enqueue(new ReceivedRequest(requestLine[0], requestLine[1], headers, Encoding.UTF8.GetString(body)));
            await _respond(stream);
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The client hung up, as a bounded reader should.
        }
    }

    private sealed class CountingStream(Stream inner, ScriptedHttpServer owner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken);
            Interlocked.Add(ref owner._bytesWritten, buffer.Length);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
