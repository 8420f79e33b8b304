using System.Diagnostics;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// An HTTP receiver misbehaving while a worker streams into it, with the default settings unless a scenario says
/// otherwise (max_connections 8, max_retries 3, on_outage: pause): answering 500 for a few seconds, cutting connections
/// mid-answer for a few seconds, and answering slowly under a burst. Nothing may be lost or dead-lettered.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class HttpFaultTests(KafkaBroker kafka)
{
    private const int Partitions = 2;
    private static readonly TimeSpan FaultLasts = TimeSpan.FromSeconds(3);

    /// <summary>A message every 25 ms: 200 messages stream in for about 5 s, before, during and after a fault.</summary>
    private static readonly TimeSpan Stream = TimeSpan.FromMilliseconds(25);

    /// <summary>What the receiver and the DLQ saw once every message was committed.</summary>
    private sealed record Outcome(int Input, HashSet<string> Delivered, int Duplicates, long Dlq, TimeSpan Recovery)
    {
        /// <summary>Neither delivered nor dead-lettered.</summary>
        public int Lost => Math.Max(0, Input - Delivered.Count - (int)Dlq);
    }

    [Fact]
    public async Task A_receiver_answering_500_for_a_few_seconds_loses_nothing_and_fills_no_dlq()
    {
        using var receiver = new HttpReceiver();
        var outcome = await RunAsync(receiver, 200, Stream, _ => { }, async () =>
        {
            receiver.RespondWith(500);
            await Eventually.True(() => receiver.Requests.Any(r => r.Status == 500), TimeSpan.FromSeconds(20), "the receiver answered 500");
            await Task.Delay(FaultLasts);
            receiver.RespondWith(200);
        });

        var failed = receiver.Requests.Count(r => r.Status == 500);
        FaultReport.Add("HTTP receiver answering 500 for 3 s, then 200", $"{outcome.Input} messages streaming in, one HTTP payload each",
            $"{outcome.Delivered.Count}", (int)outcome.Dlq, outcome.Duplicates, outcome.Lost,
            $"{failed} requests answered 500 were held and sent again; all committed {outcome.Recovery.TotalSeconds:0.0} s after the receiver recovered and the last message arrived");
        Assert.Equal(0, outcome.Lost);
        Assert.Equal(0, outcome.Dlq);
        Assert.True(failed > 0, "the receiver refused requests");
    }

    [Fact]
    public async Task A_receiver_cutting_connections_for_a_few_seconds_loses_nothing_and_every_repeat_carries_its_first_key()
    {
        using var receiver = new HttpReceiver();
        var outcome = await RunAsync(receiver, 200, Stream, sink => sink.IdempotencyKey = true, async () =>
        {
            receiver.CutConnections = true;
            await Eventually.True(() => receiver.Requests.Any(r => r.Cut), TimeSpan.FromSeconds(20), "the receiver cut a connection");
            await Task.Delay(FaultLasts);
            receiver.CutConnections = false;
        });

        // The receiver said 200 to every cut request before the cut: a receiver that acted on it sees the repeat.
        var keysPerId = receiver.Requests.Where(r => r.Status == 200).GroupBy(r => WebhookHandler.IdOf(r.Body))
            .ToDictionary(g => g.Key, g => g.Select(r => r.Headers["Idempotency-Key"]).Distinct().Count());
        var cut = receiver.Requests.Count(r => r.Cut);
        FaultReport.Add("HTTP receiver cutting connections mid-answer for 3 s (idempotency_key: true)",
            $"{outcome.Input} messages streaming in, one HTTP payload each", $"{outcome.Delivered.Count}", (int)outcome.Dlq, outcome.Duplicates, outcome.Lost,
            $"{cut} answers cut and sent again, every repeat with its first Idempotency-Key; all committed {outcome.Recovery.TotalSeconds:0.0} s after the receiver recovered and the last message arrived");
        Assert.Equal(0, outcome.Lost);
        Assert.Equal(0, outcome.Dlq);
        Assert.True(cut > 0, "the receiver cut connections");
        Assert.All(keysPerId, k => Assert.Equal(1, k.Value));
        Assert.Equal(outcome.Delivered.Count, receiver.Requests.Where(r => r.Status == 200).Select(r => r.Headers["Idempotency-Key"]).Distinct().Count());
    }

    [Fact]
    public async Task A_healthy_but_slow_receiver_under_a_burst_gets_everything_and_nothing_goes_to_the_dlq()
    {
        using var receiver = new HttpReceiver { Delay = TimeSpan.FromMilliseconds(200) };
        var clock = Stopwatch.StartNew();
        var outcome = await RunAsync(receiver, 400, spacing: null, _ => { }, () => Task.CompletedTask);

        FaultReport.Add("HTTP receiver taking 200 ms per request, under a burst", $"{outcome.Input} messages at once, one HTTP payload each",
            $"{outcome.Delivered.Count}", (int)outcome.Dlq, outcome.Duplicates, outcome.Lost,
            $"all delivered in {clock.Elapsed.TotalSeconds:0.0} s, at most {receiver.MostServing} requests in flight (max_connections 8), none timed out");
        Assert.Equal(0, outcome.Lost);
        Assert.Equal(0, outcome.Dlq);
        Assert.Equal(0, outcome.Duplicates);
        Assert.InRange(receiver.MostServing, 1, new HttpSinkConfig().MaxConnections);
    }

    /// <summary>
    /// Produces <paramref name="messages"/> (one every <paramref name="spacing"/>, or as one burst) into a worker whose
    /// HTTP sink posts to <paramref name="receiver"/>, runs <paramref name="fault"/> meanwhile, and waits until every
    /// message is committed; the recovery time runs from the end of the fault.
    /// </summary>
    private async Task<Outcome> RunAsync(HttpReceiver receiver, int messages, TimeSpan? spacing, Action<HttpSinkConfig> sink, Func<Task> fault)
    {
        var topic = kafka.CreateTopic("http-fault", Partitions);
        var group = $"{topic}-g";
        var config = TestWorker.Config(kafka.BootstrapServers, topic, group, c =>
        {
            c.Sinks.Http["hook"] = new HttpSinkConfig { Url = receiver.Url };
            sink(c.Sinks.Http["hook"]);
        });
        await using var worker = await TestWorker.StartAsync(new WebhookHandler(), config);
        var producing = Task.Run(() => TestWorker.ProduceAsync(kafka.BootstrapServers, topic, Partitions, messages, spacing: spacing));
        if (spacing is not null) await Task.Delay(TimeSpan.FromMilliseconds(500));
        await fault();
        await producing;
        // From the later of the fault's end and the last message.
        var recovered = Stopwatch.StartNew();
        await Eventually.True(() => TestWorker.Committed(kafka.BootstrapServers, topic, group, Partitions).All(c => c == messages / Partitions),
            TimeSpan.FromSeconds(30), "every message committed");
        var recovery = recovered.Elapsed;
        await worker.StopAsync();

        var accepted = receiver.Requests.Where(r => r.Status == 200).Select(r => WebhookHandler.IdOf(r.Body)).ToList();
        var delivered = accepted.ToHashSet();
        return new Outcome(messages, delivered, accepted.Count - delivered.Count, WebhookHandler.RecordsIn(kafka.BootstrapServers, $"{topic}_dlq"), recovery);
    }
}
