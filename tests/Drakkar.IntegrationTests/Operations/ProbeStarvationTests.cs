using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Drakkar.Observability.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.IntegrationTests.Operations;

/// <summary>Idle connections must never keep a probe from being answered.</summary>
public sealed class ProbeStarvationTests
{
    [Fact]
    public async Task Healthz_answers_promptly_while_forty_idle_sockets_are_open()
    {
        await using var endpoint = OperationsEndpoint.Start("127.0.0.1", 0, () => "", () => new Readiness(true, []), NullLogger.Instance);
        var target = endpoint.LocalEndpoint;
        var idle = new List<Socket>();
        try
        {
            for (var i = 0; i < 48; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(target);
                idle.Add(socket);
            }
            await Task.Delay(200); // let the endpoint accept them all

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
            var failures = new List<string>();
            var durations = new List<TimeSpan>();
            for (var probe = 0; probe < 12; probe++)
            {
                var clock = Stopwatch.StartNew();
                try
                {
                    using var response = await http.GetAsync($"http://{target}/healthz");
                    if (response.StatusCode != HttpStatusCode.OK) failures.Add($"probe {probe}: {(int)response.StatusCode}");
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    failures.Add($"probe {probe}: {e.GetType().Name} {e.Message}");
                }
                durations.Add(clock.Elapsed);
            }

            Assert.True(failures.Count == 0, $"{failures.Count}/12 probes failed with 48 idle sockets open:\n{string.Join("\n", failures)}");
            // Starved, every probe would wait for an idle connection's 1 s head timeout; one slow probe on a loaded
            // machine (1,089 ms once in CI, beside a Native AOT publish) is not that.
            durations.Sort();
            Assert.True(durations[durations.Count / 2] < TimeSpan.FromSeconds(1),
                $"the median probe took {durations[durations.Count / 2].TotalMilliseconds:0} ms ({string.Join(", ", durations.Select(d => d.TotalMilliseconds.ToString("0", System.Globalization.CultureInfo.InvariantCulture)))} ms)");
        }
        finally
        {
            foreach (var socket in idle) socket.Dispose();
        }
    }
}
