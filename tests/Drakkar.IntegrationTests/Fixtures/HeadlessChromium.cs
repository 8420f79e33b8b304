using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Drakkar.IntegrationTests.Fixtures;

/// <summary>
/// Debian's <c>chromium</c> in headless mode, driven over the DevTools protocol (a WebSocket; no npm, no driver):
/// open a page, wait for its script to render, read the DOM, take a screenshot. The page runs for real (its fetches
/// and its event stream included), so what the DOM shows is what a browser shows.
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _socket = new();
    private int _nextId;

    private HeadlessChromium(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    public static async Task<HeadlessChromium> StartAsync(int width = 1400, int height = 2000)
    {
        var binary = Tools.RequireOnPath("chromium", "Chromium (headless browser for the debug UI test)", "apt-get install -y chromium");
        var profile = Directory.CreateTempSubdirectory("drakkar-chromium-").FullName;
        var info = new ProcessStartInfo(binary)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--remote-debugging-port=0", $"--user-data-dir={profile}", $"--window-size={width},{height}", "about:blank" })
            info.ArgumentList.Add(arg);
        var process = ChildProcesses.Start(info);
        var browser = new HeadlessChromium(process, profile);
        try
        {
            var endpoint = await browser.DevToolsPortAsync(TimeSpan.FromSeconds(30));
            using var http = new HttpClient();
            var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{endpoint}/json/list"))!.AsArray();
            var page = targets.First(t => (string?)t!["type"] == "page")!;
            await browser._socket.ConnectAsync(new Uri((string)page["webSocketDebuggerUrl"]!), CancellationToken.None);
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    /// <summary>Opens <paramref name="url"/> (returns once the navigation is committed, not when scripts are done).</summary>
    public Task NavigateAsync(string url) => SendAsync("Page.navigate", new JsonObject { ["url"] = url });

    /// <summary>Evaluates <paramref name="expression"/> in the page and returns its value as JSON.</summary>
    public async Task<JsonNode?> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true });
        if (result?["exceptionDetails"] is { } error) throw new InvalidOperationException($"page script failed: {error.ToJsonString()}");
        return result?["result"]?["value"];
    }

    /// <summary>The rendered document (what <c>--dump-dom</c> prints).</summary>
    public async Task<string> DomAsync() => (string)(await EvaluateAsync("document.documentElement.outerHTML"))!;

    public async Task ScreenshotAsync(string path)
    {
        var result = await SendAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png", ["captureBeyondViewport"] = true });
        await File.WriteAllBytesAsync(path, Convert.FromBase64String((string)result!["data"]!));
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            // Already gone.
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_profile, recursive: true);
        }
        catch (IOException)
        {
            // A helper process may still hold a file for a moment; the profile is in /tmp.
        }
    }

    private async Task<int> DevToolsPortAsync(TimeSpan timeout)
    {
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..." on stderr.
        using var stop = new CancellationTokenSource(timeout);
        while (await _process.StandardError.ReadLineAsync(stop.Token) is { } line)
        {
            const string marker = "DevTools listening on ws://127.0.0.1:";
            var at = line.IndexOf(marker, StringComparison.Ordinal);
            if (at < 0) continue;
            var rest = line[(at + marker.Length)..];
            _ = DrainAsync(_process.StandardError);
            _ = DrainAsync(_process.StandardOutput);
            return int.Parse(rest[..rest.IndexOf('/')], System.Globalization.CultureInfo.InvariantCulture);
        }
        throw new InvalidOperationException("chromium exited before it announced its DevTools port");
    }

    private static async Task DrainAsync(StreamReader reader)
    {
        try
        {
            while (await reader.ReadLineAsync() is not null) { }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The browser is gone.
        }
    }

    private async Task<JsonNode?> SendAsync(string method, JsonObject parameters)
    {
        var id = Interlocked.Increment(ref _nextId);
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, timeout.Token);
        var buffer = new byte[1 << 16];
        while (true)
        {
            using var received = new MemoryStream();
            WebSocketReceiveResult part;
            do
            {
                part = await _socket.ReceiveAsync(buffer, timeout.Token);
                received.Write(buffer, 0, part.Count);
            } while (!part.EndOfMessage);
            var reply = JsonNode.Parse(received.ToArray())!;
            if ((int?)reply["id"] != id) continue; // an event, or an answer to someone else
            if (reply["error"] is { } error) throw new InvalidOperationException($"{method} failed: {error.ToJsonString()}");
            return reply["result"];
        }
    }
}
