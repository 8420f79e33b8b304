using System.Net;
using System.Net.Sockets;
using System.Text;
using Drakkar.IntegrationTests.Support;
using Drakkar.Observability.Metrics;
using Drakkar.Sinks;
using static Drakkar.IntegrationTests.Sinks.SinkTestKit;

namespace Drakkar.IntegrationTests.Sinks;

/// <summary>
/// A plugin sink that sends each batch as one line over a fresh TCP connection and waits for the reply line, watching
/// no cancellation token at all: the kind of sink call the delivery engine must not wait on forever.
/// </summary>
internal sealed class LineSink(int port) : ISink
{
    public string Kind => "line";
    public string Name => "main";
    public bool IsIdempotent => false;
    public bool IsConnected => true;
    public ValueTask ConnectAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var stream = client.GetStream();
        var ids = string.Join(",", batch.Payloads.Select(p => ((Reading)p.Data.Value).Id));
        await stream.WriteAsync(Encoding.UTF8.GetBytes(ids + "\n"));
        using var reader = new StreamReader(stream);
        if (await reader.ReadLineAsync() != "ok") throw new IOException("the server hung up");
    }
}

/// <summary>
/// A TCP server that accepts every connection but, until <see cref="Answer"/>, never reads or replies: a destination
/// that is up as far as TCP can tell and hangs every call. Afterwards it records each line and answers "ok".
/// </summary>
internal sealed class HangingLineServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly TaskCompletionSource _answering = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();

    public HangingLineServer()
    {
        _listener.Start();
        _ = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public System.Collections.Concurrent.ConcurrentQueue<string> Lines { get; } = new();

    public void Answer() => _answering.TrySetResult();

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        using var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            await _answering.Task.WaitAsync(_stop.Token);
            using var reader = new StreamReader(stream, leaveOpen: true);
            if (await reader.ReadLineAsync(_stop.Token) is not { } line) return;
            Lines.Enqueue(line);
            await stream.WriteAsync("ok\n"u8.ToArray(), _stop.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // Stopped, or the client gave up.
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}

public sealed class AttemptTimeoutTests
{
    [Fact]
    public async Task A_sink_call_that_never_returns_is_abandoned_at_the_attempt_timeout_and_its_payloads_held_until_the_destination_answers()
    {
        using var server = new HangingLineServer();
        using var logs = new LogCapture();
        var dlq = new RecordingDlq();
        var manager = new SinkManager([new LineSink(server.Port)], dlq, new SinkManagerOptions
        {
            Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause, AttemptTimeout = TimeSpan.FromSeconds(0.5) },
        }, new DrakkarMetrics(), logs);
        await manager.StartAsync(default);

        var result = new CollectResult();
        result.Custom.Add(CustomPayload.Of("line", Reading.Sample(1), "main"));
        var delivery = manager.DeliverAsync(result, Origin(offsets: 7), default).AsTask();

        await Eventually.True(() => manager.StatsOf("line", "main").Errors >= 2, TimeSpan.FromSeconds(10),
            () => $"two attempts failed on the timeout while the server hangs\n{logs.Text()}");
        var stats = manager.StatsOf("line", "main");
        Assert.Contains("no answer within 0.5s (attempt_timeout_seconds)", stats.LastError);
        Assert.False(delivery.IsCompleted);
        Assert.True(manager.HoldingForOutage);
        Assert.Equal(result.Count, manager.InFlightPayloads);

        server.Answer();
        await delivery.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains("r-1", server.Lines);
        Assert.Empty(dlq.Letters);
        Assert.Equal(1, manager.StatsOf("line", "main").Delivered);
        Assert.Single(logs.Containing("is back: no payload held any more"));
        await manager.CloseAsync();
    }

    [Fact]
    public async Task A_payload_that_makes_the_sink_hang_while_others_get_through_is_dead_lettered_not_held_forever()
    {
        using var logs = new LogCapture();
        var dlq = new RecordingDlq();
        // The destination answers every call except one carrying r-13, which it never answers.
        var sink = new ScriptedSink("line", "main")
        {
            Behavior = (batch, _) => batch.Payloads.Any(p => ((Reading)p.Data.Value).Id == "r-13")
                ? new ValueTask(new TaskCompletionSource().Task)
                : ValueTask.CompletedTask,
        };
        var manager = new SinkManager([sink], dlq, new SinkManagerOptions
        {
            Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause, AttemptTimeout = TimeSpan.FromSeconds(0.5) },
        }, new DrakkarMetrics(), logs);
        await manager.StartAsync(default);

        // Alone, the hanging call looks like an outage: it is held (and consumption would pause).
        var poison = manager.DeliverAsync(Line(13), Origin(offsets: 13), default).AsTask();
        await Eventually.True(() => manager.StatsOf("line", "main").Errors >= 1, TimeSpan.FromSeconds(10), logs.Text);
        Assert.False(poison.IsCompleted);

        // Others get through (once a probe of theirs does), so the next time r-13 hangs it is its own fault.
        var healthy = Task.WhenAll(manager.DeliverAsync(Line(1), Origin(offsets: 1), default).AsTask(),
            manager.DeliverAsync(Line(2), Origin(offsets: 2), default).AsTask());
        await Task.WhenAll(poison, healthy).WaitAsync(TimeSpan.FromSeconds(30));

        var letter = Assert.Single(dlq.Letters);
        Assert.Equal(13, letter.Messages.Single().Offset);
        Assert.Contains("no answer within 0.5s (attempt_timeout_seconds); the call was abandoned; other deliveries to this instance succeeded meanwhile, so these payloads are at fault", letter.Error, StringComparison.Ordinal);
        Assert.Equal(2, manager.StatsOf("line", "main").Delivered);
        Assert.Equal(0, manager.InFlightPayloads);
        await manager.CloseAsync();
    }

    private static CollectResult Line(int value) => new() { Custom = { CustomPayload.Of("line", Reading.Sample(value), "main") } };

    [Fact]
    public async Task Payloads_still_held_at_close_are_not_reported_as_the_sink_being_back()
    {
        using var server = new HangingLineServer();
        using var logs = new LogCapture();
        var manager = new SinkManager([new LineSink(server.Port)], new RecordingDlq(), new SinkManagerOptions
        {
            Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause, AttemptTimeout = TimeSpan.FromSeconds(0.5) },
        }, new DrakkarMetrics(), logs);
        await manager.StartAsync(default);
        var result = new CollectResult();
        result.Custom.Add(CustomPayload.Of("line", Reading.Sample(1), "main"));
        _ = manager.DeliverAsync(result, Origin(offsets: 7), default).AsTask();
        await Eventually.True(() => logs.Containing("is unreachable: holding its payloads").Length > 0, TimeSpan.FromSeconds(10), () => logs.Text());

        await manager.CloseAsync();

        Assert.True(logs.Containing("is back: no payload held").Length == 0, logs.Text());
        var given = Assert.Single(logs.Containing("was not reached again"));
        Assert.Contains("because the worker is stopping; their offsets stay uncommitted", given.Message, StringComparison.Ordinal);
    }

    /// <summary>A stop during an outage used to log a warning per held batch (hundreds on a busy worker); now one line says how many.</summary>
    [Fact]
    public async Task Many_batches_held_at_close_are_reported_in_one_line()
    {
        using var server = new HangingLineServer();
        using var logs = new LogCapture();
        var manager = new SinkManager([new LineSink(server.Port)], new RecordingDlq(), new SinkManagerOptions
        {
            Batching = (_, _) => SinkBatching.Default with { OnOutage = OutagePolicy.Pause, AttemptTimeout = TimeSpan.FromSeconds(0.5), BatchSize = 1 },
        }, new DrakkarMetrics(), logs);
        await manager.StartAsync(default);
        for (var offset = 1; offset <= 12; offset++)
        {
            var result = new CollectResult();
            result.Custom.Add(CustomPayload.Of("line", Reading.Sample(offset), "main"));
            _ = manager.DeliverAsync(result, Origin(offsets: offset), default).AsTask();
        }
        await Eventually.True(() => logs.Containing("is unreachable: holding its payloads").Length > 0, TimeSpan.FromSeconds(10), () => logs.Text());

        await manager.CloseAsync();

        var abandoned = Assert.Single(logs.Containing("left undelivered at close"));
        Assert.Matches(@"Sink line/main: \d+ hook result\(s\) in \d+ batch\(es\) left undelivered at close \(\w+\); their offsets stay uncommitted", abandoned.Message);
    }
}
