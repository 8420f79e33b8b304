using System.Collections.Concurrent;
using System.Net;
using System.Text;

namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>A request the <see cref="HttpReceiver"/> saw, with the status it answered.</summary>
public sealed record ReceivedRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body, int Status = 200)
{
    /// <summary>The body as sent, for binary payloads (<see cref="Body"/> is its UTF-8 reading).</summary>
    public byte[] Bytes { get; init; } = [];

    /// <summary>The receiver read the whole request, sent the status line and headers, then cut the connection mid-body.</summary>
    public bool Cut { get; init; }

    /// <summary>The client's address and port: one per connection, so repeated values show keep-alive reuse.</summary>
    public string Connection { get; init; } = "";

    /// <summary>When the request arrived (before <see cref="HttpReceiver.Delay"/>).</summary>
    public DateTimeOffset ArrivedAt { get; init; }
}

/// <summary>
/// A local HTTP server that records every request and answers with a configurable status, serving requests
/// concurrently (as a threaded receiver does). It can take a while per request (<see cref="Delay"/>) and cut
/// connections mid-answer (<see cref="CutConnections"/>), and it counts the most requests it was serving at once.
/// </summary>
public sealed class HttpReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<ReceivedRequest> _requests = new();
    private readonly Task _loop;
    private volatile int _status = 200;
    private volatile bool _cut;
    private long _delayTicks;
    private int _serving;
    private int _mostServing;
    private volatile string? _errorBody;
    private volatile string? _retryAfter;
    private volatile string? _hangOn;
    private readonly CancellationTokenSource _closing = new();

    public HttpReceiver()
    {
        Port = FreePort.Next();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/";

    public IReadOnlyCollection<ReceivedRequest> Requests => _requests;

    /// <summary>
    /// The status code every following request is answered with; <paramref name="errorBody"/> replaces the default
    /// body of an error answer (a receiver that echoes what it refused, for instance); <paramref name="retryAfter"/>, when
    /// given, is sent as the answers' Retry-After header.
    /// </summary>
    public void RespondWith(int status, string? errorBody = null, string? retryAfter = null)
    {
        _errorBody = errorBody;
        _retryAfter = retryAfter;
        _status = status;
    }

    /// <summary>How long the receiver takes over each following request before it answers.</summary>
    public TimeSpan Delay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _delayTicks));
        set => Interlocked.Exchange(ref _delayTicks, value.Ticks);
    }

    /// <summary>While true, each request is read in full and answered with headers and part of the body, then the connection is cut.</summary>
    public bool CutConnections
    {
        get => _cut;
        set => _cut = value;
    }

    /// <summary>While set, a request whose body contains this text is read, recorded with status 0 and never answered (until the receiver is disposed).</summary>
    public string? HangOn
    {
        get => _hangOn;
        set => _hangOn = value;
    }

    /// <summary>The most requests the receiver was serving at the same time.</summary>
    public int MostServing => Volatile.Read(ref _mostServing);

    public void Clear() => _requests.Clear();

    public void Dispose()
    {
        // Close alone: after Stop, Close removes the listener's prefixes a second time, and the managed HttpListener
        // then binds the port again just to release it, failing with "Address already in use" when another socket has
        // taken the port meanwhile (two CI runs failed so).
        _closing.Cancel();
        _listener.Close();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _closing.Dispose();
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (HttpListenerException) { return; }
            catch (ObjectDisposedException) { return; }
            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        var arrivedAt = DateTimeOffset.UtcNow;
        var serving = Interlocked.Increment(ref _serving);
        for (var most = _mostServing; serving > most; most = _mostServing)
            if (Interlocked.CompareExchange(ref _mostServing, serving, most) == most) break;
        try
        {
            using var content = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(content);
            var bytes = content.ToArray();
            var headers = context.Request.Headers.AllKeys.Where(k => k is not null)
                .ToDictionary(k => k!, k => context.Request.Headers[k] ?? "", StringComparer.OrdinalIgnoreCase);
            if (_hangOn is { } marker && Encoding.UTF8.GetString(bytes).Contains(marker, StringComparison.Ordinal))
            {
                // Recorded with status 0: read in full, never answered.
                _requests.Enqueue(new ReceivedRequest(context.Request.HttpMethod, context.Request.Url?.AbsolutePath ?? "/", headers, Encoding.UTF8.GetString(bytes), 0)
                {
                    Bytes = bytes,
                    ArrivedAt = arrivedAt,
                });
                try { await Task.Delay(Timeout.Infinite, _closing.Token); } catch (OperationCanceledException) { }
                return;
            }
            if (Delay is { Ticks: > 0 } delay) await Task.Delay(delay);
            var status = _status;
            var cut = _cut;
            _requests.Enqueue(new ReceivedRequest(context.Request.HttpMethod, context.Request.Url?.AbsolutePath ?? "/", headers, Encoding.UTF8.GetString(bytes), status)
            {
                Bytes = bytes,
                Cut = cut,
                Connection = context.Request.RemoteEndPoint?.ToString() ?? "",
                ArrivedAt = arrivedAt,
            });
            context.Response.StatusCode = status;
            if (_retryAfter is { } retryAfter) context.Response.Headers["Retry-After"] = retryAfter;
            var answer = Encoding.UTF8.GetBytes(status < 300 ? "{\"ok\":true}" : _errorBody ?? "{\"error\":\"receiver told to fail\"}");
            if (cut)
            {
                // Promise more than is sent, send the start, then drop the connection.
                context.Response.ContentLength64 = answer.Length + 100;
                await context.Response.OutputStream.WriteAsync(answer);
                await context.Response.OutputStream.FlushAsync();
                context.Response.Abort();
                return;
            }
            await context.Response.OutputStream.WriteAsync(answer);
            context.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The client hung up, or the receiver is stopping.
        }
        finally
        {
            Interlocked.Decrement(ref _serving);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class HttpCollection : ICollectionFixture<HttpReceiver>
{
    public const string Name = "http";
}
