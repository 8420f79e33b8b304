using System.Collections.Concurrent;
using System.Net;
using System.Text;

namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>A request the <see cref="HttpReceiver"/> saw, with the status it answered.</summary>
public sealed record ReceivedRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body, int Status = 200)
{
    /// <summary>The body as sent, for binary payloads (<see cref="Body"/> is its UTF-8 reading).</summary>
    public byte[] Bytes { get; init; } = [];
}

/// <summary>A local HTTP server that records every request and answers with a configurable status.</summary>
public sealed class HttpReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<ReceivedRequest> _requests = new();
    private readonly Task _loop;
    private volatile int _status = 200;
    private volatile string? _errorBody;

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
    /// body of an error answer (a receiver that echoes what it refused, for instance).
    /// </summary>
    public void RespondWith(int status, string? errorBody = null)
    {
        _errorBody = errorBody;
        _status = status;
    }

    public void Clear() => _requests.Clear();

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (HttpListenerException) { return; }
            catch (ObjectDisposedException) { return; }
            using var content = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(content);
            var bytes = content.ToArray();
            var headers = context.Request.Headers.AllKeys.Where(k => k is not null)
                .ToDictionary(k => k!, k => context.Request.Headers[k] ?? "", StringComparer.OrdinalIgnoreCase);
            var status = _status;
            _requests.Enqueue(new ReceivedRequest(context.Request.HttpMethod, context.Request.Url?.AbsolutePath ?? "/", headers, Encoding.UTF8.GetString(bytes), status)
            {
                Bytes = bytes,
            });
            context.Response.StatusCode = status;
            var answer = Encoding.UTF8.GetBytes(status < 300 ? "{\"ok\":true}" : _errorBody ?? "{\"error\":\"receiver told to fail\"}");
            await context.Response.OutputStream.WriteAsync(answer);
            context.Response.Close();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class HttpCollection : ICollectionFixture<HttpReceiver>
{
    public const string Name = "http";
}
