using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Drakkar.Hosting;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.Kafka.Embedded;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Bench.Report;

/// <summary>The row every end-to-end sink scenario writes: one per task, derived from the message value <c>m-{i}</c>.</summary>
[Payload]
public sealed partial record PipelineRow(string Id, int Count, double Score, string Note)
{
    /// <summary>The row for a consumed value; both the worker and the hand loops build it this way.</summary>
    public static PipelineRow From(string value)
    {
        var i = int.Parse(value.AsSpan(value.IndexOf('-', StringComparison.Ordinal) + 1), CultureInfo.InvariantCulture);
        return new PipelineRow(value, i, i * 0.5, "note " + value);
    }
}

/// <summary>System.Text.Json source generation: what the hand loops serialize with (same snake_case names).</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(PipelineRow))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
internal sealed partial class PipelineJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>
/// The end-to-end pieces the pipeline-* rows share: input production, the worker run (WorkerHost + config only, so
/// a rewrite of the delivery path behind it needs no change here), the generic hand loop a user would write, and the
/// committed-offsets clock both sides stop on.
/// </summary>
internal static class EndToEnd
{
    public const int Partitions = 8;
    public const int CommitIntervalMs = 50;

    /// <summary>Records the hand loops take from the consumer before they write and commit.</summary>
    public const int Chunk = 500;

    /// <summary>Produces <c>m-{i}</c> values round-robin over the partitions (not timed); returns how many the broker kept.</summary>
    public static long Produce(EmbeddedKafkaBroker broker, string topic, int messages, int partitions = Partitions)
    {
        broker.CreateTopic(topic, partitions);
        broker.CreateTopic(topic + "-out", partitions);
        using var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, LingerMs = 5 }).Build();
        for (var i = 0; i < messages; i++)
        {
            producer.Produce(new TopicPartition(topic, i % partitions), new Message<byte[]?, byte[]> { Key = null, Value = Encoding.UTF8.GetBytes($"m-{i}") });
            if (i % 20_000 == 19_999) producer.Flush(TimeSpan.FromSeconds(60));
        }
        producer.Flush(TimeSpan.FromSeconds(60));
        using var watcher = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = broker.BootstrapServers, GroupId = topic + "-watermarks" }).Build();
        return Enumerable.Range(0, partitions)
            .Select(p => watcher.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10)))
            .Sum(w => w.High.Value - w.Low.Value);
    }

    public static DrakkarConfig Config(string brokers, string topic, string group)
    {
        var config = new DrakkarConfig
        {
            Kafka =
            {
                Brokers = brokers, SourceTopic = topic, ConsumerGroup = group, CommitIntervalMs = CommitIntervalMs,
                SessionTimeoutMs = 6000, HeartbeatIntervalMs = 500,
            },
            Metrics = { Enabled = false },
        };
        return config;
    }

    /// <summary>
    /// Runs the whole worker over the topic until the group's committed offsets cover <paramref name="target"/>
    /// records (or, when positive, <paramref name="maxSeconds"/> pass; otherwise 300 s is a failure); returns seconds from the first arranged window and the
    /// records committed by then.
    /// </summary>
    public static async Task<(double Seconds, long Committed)> RunWorkerAsync(DrakkarConfig config, PipelineHandler handler, long target,
        int partitions = Partitions, double maxSeconds = 0)
    {
        var parts = DrakkarApp.DefaultParts();
        await using var host = await WorkerHost.StartAsync(handler, config, "bench-worker",
            new WorkerParts { Executor = parts.Executor, Delivery = parts.Delivery, Loggers = NullLoggerFactory.Instance }, CancellationToken.None);
        var (ended, committed) = await WaitForCommittedAsync(config.Kafka.Brokers, config.Kafka.SourceTopic, config.Kafka.ConsumerGroup, partitions, target, maxSeconds);
        await host.StopAsync();
        if (handler.FirstArrange == 0) throw new InvalidOperationException($"the worker never arranged a window of {config.Kafka.SourceTopic}");
        return ((ended - handler.FirstArrange) / (double)Stopwatch.Frequency, committed);
    }

    /// <summary>
    /// The loop a user would write: consume up to <see cref="Chunk"/> records (whatever is already fetched), hand
    /// their values to <paramref name="write"/>, and once that has landed commit the next offsets synchronously
    /// (at least once). Timed from the first consumed record until the committed offsets cover the target.
    /// </summary>
    public static async Task<(double Seconds, long Committed)> RunHandLoopAsync(string brokers, string topic, string group, long target,
        Func<IReadOnlyList<string>, Task> write, int partitions = Partitions, double maxSeconds = 0)
    {
        long first = 0;
        using var stop = new CancellationTokenSource();
        var loop = Task.Factory.StartNew(() =>
        {
            using var consumer = new ConsumerBuilder<byte[]?, byte[]>(new ConsumerConfig
            {
                BootstrapServers = brokers, GroupId = group, EnableAutoCommit = false,
                AutoOffsetReset = AutoOffsetReset.Earliest, SessionTimeoutMs = 6000, HeartbeatIntervalMs = 500,
            }).Build();
            consumer.Subscribe(topic);
            var values = new List<string>(Chunk);
            var next = new Dictionary<TopicPartition, TopicPartitionOffset>();
            while (!stop.IsCancellationRequested)
            {
                var record = consumer.Consume(TimeSpan.FromMilliseconds(100));
                while (record is not null)
                {
                    if (first == 0) first = Stopwatch.GetTimestamp();
                    values.Add(Encoding.UTF8.GetString(record.Message.Value));
                    next[record.TopicPartition] = new TopicPartitionOffset(record.TopicPartition, record.Offset + 1);
                    record = values.Count < Chunk ? consumer.Consume(TimeSpan.Zero) : null;
                }
                if (values.Count == 0) continue;
                write(values).GetAwaiter().GetResult();
                consumer.Commit(next.Values);
                values.Clear();
                next.Clear();
            }
            consumer.Close();
        }, TaskCreationOptions.LongRunning);
        try
        {
            var (ended, committed) = await WaitForCommittedAsync(brokers, topic, group, partitions, target, maxSeconds, loop);
            return ((ended - first) / (double)Stopwatch.Frequency, committed);
        }
        finally
        {
            await stop.CancelAsync();
            await loop;
        }
    }

    /// <summary>Polls the group's committed offsets (a separate client, not a group member) until they cover the target or time runs out.</summary>
    public static async Task<(long At, long Committed)> WaitForCommittedAsync(string brokers, string topic, string group, int partitions, long target,
        double maxSeconds, Task? worker = null)
    {
        using var watcher = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = brokers, GroupId = group }).Build();
        var all = Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)).ToArray();
        var deadline = Stopwatch.GetTimestamp() + (long)((maxSeconds > 0 ? maxSeconds : 300) * Stopwatch.Frequency);
        long committed = 0;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (worker is { IsCompleted: true }) await worker; // surfaces a failed hand loop instead of waiting out the clock
            committed = watcher.Committed(all, TimeSpan.FromSeconds(10)).Sum(c => Math.Max(0, c.Offset.Value));
            if (committed >= target) return (Stopwatch.GetTimestamp(), committed);
            await Task.Delay(10);
        }
        if (maxSeconds <= 0) throw new TimeoutException($"group {group} committed {committed} of {target} records of {topic} within 300 s");
        return (Stopwatch.GetTimestamp(), committed);
    }

    // ---- memory: the worker (or the hand loop) alone in a child process --------------------------------------

    /// <summary>
    /// <c>Drakkar.Bench memory-child drakkar|hand brokers topic partitions target maxSeconds</c>: consumes the
    /// topic with a new group (worker: precomputed tasks → Kafka sink; hand: consume → produce → commit) and prints
    /// <c>peak_kb=… committed=… seconds=…</c>, the child's own VmHWM at the end.
    /// </summary>
    public static async Task<int> MemoryChildAsync(string[] args)
    {
        var (side, brokers, topic) = (args[0], args[1], args[2]);
        // This child starts no broker and, on the hand side, no Drakkar client: without the resolver Confluent.Kafka
        // probes on its own and can bind an older system librdkafka (kcat's), which lacks functions it calls.
        Drakkar.Kafka.KafkaNativeLibrary.EnsureLoaded();
        var partitions = int.Parse(args[3], CultureInfo.InvariantCulture);
        var target = long.Parse(args[4], CultureInfo.InvariantCulture);
        var maxSeconds = double.Parse(args[5], CultureInfo.InvariantCulture);
        var group = $"{topic}-{side}-{Environment.ProcessId}";
        double seconds;
        long committed;
        if (side == "drakkar")
        {
            var config = Config(brokers, topic, group);
            config.Sinks.Kafka["results"] = new KafkaSinkConfig { Topic = topic + "-out" };
            (seconds, committed) = await RunWorkerAsync(config, new KafkaRowsHandler(), target, partitions, maxSeconds);
        }
        else
        {
            using var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig { BootstrapServers = brokers, Acks = Acks.All, LingerMs = 0 }).Build();
            (seconds, committed) = await RunHandLoopAsync(brokers, topic, group, target, values =>
            {
                foreach (var value in values)
                    producer.Produce(topic + "-out", new Message<byte[]?, byte[]> { Value = JsonSerializer.SerializeToUtf8Bytes(PipelineRow.From(value), PipelineJson.Default.PipelineRow) });
                producer.Flush(TimeSpan.FromSeconds(30));
                return Task.CompletedTask;
            }, partitions, maxSeconds);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peak_kb={Status("VmHWM")} committed={committed} seconds={seconds:F2}"));
        return 0;
    }

    /// <summary>Runs <see cref="MemoryChildAsync"/> in a child process; returns its peak RSS in MB, committed records and seconds.</summary>
    public static async Task<(double PeakMb, long Committed, double Seconds)> MeasureChildAsync(string side, string brokers, string topic, int partitions,
        long target, double maxSeconds)
    {
        var host = Environment.ProcessPath!;
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") start.ArgumentList.Add(typeof(EndToEnd).Assembly.Location);
        foreach (var arg in (string[])["memory-child", side, brokers, topic, partitions.ToString(CultureInfo.InvariantCulture),
                     target.ToString(CultureInfo.InvariantCulture), maxSeconds.ToString(CultureInfo.InvariantCulture)])
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var line = output.Split('\n').LastOrDefault(l => l.StartsWith("peak_kb=", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"memory child ({side}) exited {process.ExitCode} without a result: {output}{await errors}");
        var fields = line.Split(' ').Select(f => f.Split('=')).ToDictionary(f => f[0], f => f[1]);
        return (long.Parse(fields["peak_kb"], CultureInfo.InvariantCulture) / 1024.0, long.Parse(fields["committed"], CultureInfo.InvariantCulture),
            double.Parse(fields["seconds"], CultureInfo.InvariantCulture));
    }

    private static long Status(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        return -1;
    }
}

/// <summary>One precomputed task per message (stdout = the message value); subclasses turn each result into one payload.</summary>
public abstract class PipelineHandler : DrakkarHandler
{
    private long _firstArrange;

    public long FirstArrange => Interlocked.Read(ref _firstArrange);

    public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
    {
        Interlocked.CompareExchange(ref _firstArrange, Stopwatch.GetTimestamp(), 0);
        var tasks = new ExecutorTask[messages.Count];
        for (var i = 0; i < tasks.Length; i++) tasks[i] = MakeTask(messages[i]);
        return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>(tasks);
    }

    protected virtual ExecutorTask MakeTask(SourceMessage message) =>
        new(TaskId.New("row"))
        {
            Precomputed = new PrecomputedResult(Encoding.UTF8.GetString(message.Value)),
            SourceOffsets = [message.Offset],
        };

    public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result) => ValueTask.FromResult<CollectResult?>(Collect(PipelineRow.From(result.Stdout)));

    protected abstract CollectResult Collect(PipelineRow row);
}

[Sink(SinkKind.Postgres, "rows")]
public sealed partial class PostgresRowsHandler : PipelineHandler
{
    protected override CollectResult Collect(PipelineRow row) => new() { Postgres = { PostgresPayload.Of(PipelineSinks.Table, row) } };
}

[Sink(SinkKind.Redis, "rows")]
public sealed partial class RedisRowsHandler : PipelineHandler
{
    protected override CollectResult Collect(PipelineRow row) => new() { Redis = { RedisPayload.Of("row:" + row.Id, row) } };
}

[Sink(SinkKind.Filesystem, "rows")]
public sealed partial class FileRowsHandler : PipelineHandler
{
    protected override CollectResult Collect(PipelineRow row) => new() { Files = { FilePayload.Of(PipelineSinks.FileName, row) } };
}

[Sink(SinkKind.Http, "rows")]
public sealed partial class HttpRowsHandler : PipelineHandler
{
    protected override CollectResult Collect(PipelineRow row) => new() { Http = { HttpPayload.Of(row) } };
}

[Sink(SinkKind.Kafka, "results")]
public sealed partial class KafkaRowsHandler : PipelineHandler
{
    protected override CollectResult Collect(PipelineRow row) => new() { Kafka = { KafkaPayload.Of(row) } };
}

/// <summary>A real subprocess per message (<c>/bin/true</c>); each completed task sends its row to the Kafka sink.</summary>
[Sink(SinkKind.Kafka, "results")]
public sealed partial class ExecRowsHandler : PipelineHandler
{
    protected override ExecutorTask MakeTask(SourceMessage message) =>
        new(TaskId.New("true"))
        {
            BinaryPath = "/bin/true",
            SourceOffsets = [message.Offset],
            Metadata = { ["value"] = Encoding.UTF8.GetString(message.Value) },
        };

    public override ValueTask<CollectResult?> OnTaskComplete(ExecutorResult result) =>
        ValueTask.FromResult<CollectResult?>(Collect(PipelineRow.From(result.Task.Metadata["value"])));

    protected override CollectResult Collect(PipelineRow row) => new() { Kafka = { KafkaPayload.Of(row) } };
}

/// <summary>
/// The pipeline-* rows: the whole worker (embedded broker in, precomputed tasks, one payload per task from
/// <c>OnTaskComplete</c>, commits) into each sink, against the hand loop a user would write with that sink's client.
/// </summary>
internal static class PipelineSinks
{
    public const string Table = "pipeline_rows";
    public const string FileName = "rows.jsonl";
    public const int RedisPipeline = 64;
    public const int HttpConcurrency = 8;

    /// <summary>The drakkar and hand-loop runs for one sink; <paramref name="round"/> names fresh groups.</summary>
    internal sealed record Case(string Name, Samples Row, Func<string, int, Task<double>> Drakkar, Func<string, int, Task<double>> Baseline);

    public static async Task<List<Samples>> RunAsync(IReadOnlyCollection<string> names, int messages, int rounds, Action<string> progress)
    {
        using var broker = EmbeddedKafkaBroker.Start();
        var brokers = broker.BootstrapServers;
        var cleanup = new List<IDisposable>();
        var cases = new List<Case>();
        var topics = new Dictionary<string, string>();
        try
        {
            var shape = $"{messages:N0} tasks, 8 partitions, one payload per task";
            if (names.Contains("pipeline-postgres"))
            {
                var postgres = new PostgresServer();
                cleanup.Add(postgres);
                var dsn = postgres.CreateDatabase("pipeline");
                await Sql(dsn, $"CREATE TABLE {Table} (id text, count integer, score double precision, note text)");
                cases.Add(new Case("pipeline-postgres",
                    new Samples($"End to end → PostgreSQL sink (insert mode): {shape}", "rows/s",
                        $"Confluent consume loop + Npgsql binary COPY per chunk of {EndToEnd.Chunk}, commit after each", "≥ 0.50"),
                    async (topic, round) =>
                    {
                        await Sql(dsn, $"TRUNCATE {Table}");
                        var config = EndToEnd.Config(brokers, topic, $"{topic}-drakkar-{round}");
                        config.Sinks.Postgres["rows"] = new PostgresSinkConfig { Dsn = dsn, Mode = PostgresWriteMode.Insert };
                        return await Checked(messages, await EndToEnd.RunWorkerAsync(config, new PostgresRowsHandler(), messages), () => Count(dsn));
                    },
                    async (topic, round) =>
                    {
                        await Sql(dsn, $"TRUNCATE {Table}");
                        await using var connection = new Npgsql.NpgsqlConnection(dsn);
                        await connection.OpenAsync();
                        var result = await EndToEnd.RunHandLoopAsync(brokers, topic, $"{topic}-hand-{round}", messages, values => CopyAsync(connection, values));
                        return await Checked(messages, result, () => Count(dsn));
                    }));
            }
            if (names.Contains("pipeline-redis"))
            {
                var redis = RedisServer.WithoutPersistence();
                cleanup.Add(redis);
                cases.Add(new Case("pipeline-redis",
                    new Samples($"End to end → Redis sink: {shape} (a SET each)", "SETs/s",
                        $"Confluent consume loop + raw RESP SETs pipelined {RedisPipeline} deep on one connection, commit per chunk of {EndToEnd.Chunk}", "≥ 0.50"),
                    async (topic, round) =>
                    {
                        await RespAsync(redis.Port, ["FLUSHALL"]);
                        var config = EndToEnd.Config(brokers, topic, $"{topic}-drakkar-{round}");
                        config.Sinks.Redis["rows"] = new RedisSinkConfig { Url = redis.Url };
                        return await Checked(messages, await EndToEnd.RunWorkerAsync(config, new RedisRowsHandler(), messages), () => DbSize(redis.Port));
                    },
                    async (topic, round) =>
                    {
                        await RespAsync(redis.Port, ["FLUSHALL"]);
                        using var client = new RespPipeline(redis.Port);
                        var result = await EndToEnd.RunHandLoopAsync(brokers, topic, $"{topic}-hand-{round}", messages, values =>
                        {
                            client.Set(values);
                            return Task.CompletedTask;
                        });
                        return await Checked(messages, result, () => DbSize(redis.Port));
                    }));
            }
            if (names.Contains("pipeline-files"))
            {
                var directory = Directory.CreateTempSubdirectory("drakkar-bench-files-").FullName;
                cleanup.Add(new Deleter(directory));
                var path = Path.Combine(directory, FileName);
                cases.Add(new Case("pipeline-files",
                    new Samples($"End to end → filesystem sink (one JSONL file): {shape}", "lines/s",
                        $"Confluent consume loop + buffered FileStream append, flush per chunk of {EndToEnd.Chunk}, commit after each", "≥ 0.50"),
                    async (topic, round) =>
                    {
                        File.Delete(path);
                        var config = EndToEnd.Config(brokers, topic, $"{topic}-drakkar-{round}");
                        config.Sinks.Filesystem["rows"] = new FileSinkConfig { BasePath = directory };
                        return await Checked(messages, await EndToEnd.RunWorkerAsync(config, new FileRowsHandler(), messages), () => Task.FromResult(Lines(path)));
                    },
                    async (topic, round) =>
                    {
                        File.Delete(path);
                        (double, long) result;
                        await using (var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 64 * 1024))
                        {
                            result = await EndToEnd.RunHandLoopAsync(brokers, topic, $"{topic}-hand-{round}", messages, values =>
                            {
                                foreach (var value in values)
                                {
                                    JsonSerializer.Serialize(file, PipelineRow.From(value), PipelineJson.Default.PipelineRow);
                                    file.WriteByte((byte)'\n');
                                }
                                file.Flush();
                                return Task.CompletedTask;
                            });
                        }
                        return await Checked(messages, result, () => Task.FromResult(Lines(path)));
                    }));
            }
            if (names.Contains("pipeline-http"))
            {
                var receiver = new FastHttpReceiver();
                cleanup.Add(receiver);
                var row = new Samples($"End to end → HTTP sink (local keep-alive receiver): {shape} (a POST each)", "requests/s",
                    $"Confluent consume loop + HttpClient POSTs, {HttpConcurrency} in flight on ≤ {HttpConcurrency} connections, commit per chunk of {EndToEnd.Chunk}", "≥ 0.80");
                cases.Add(new Case("pipeline-http", row,
                    async (topic, round) =>
                    {
                        receiver.Reset();
                        var config = EndToEnd.Config(brokers, topic, $"{topic}-drakkar-{round}");
                        config.Sinks.Http["rows"] = new HttpSinkConfig { Url = receiver.Url };
                        var rate = await Checked(messages, await EndToEnd.RunWorkerAsync(config, new HttpRowsHandler(), messages), () => Task.FromResult(receiver.Requests));
                        DrakkarConnections.Add(receiver.Connections);
                        return rate;
                    },
                    async (topic, round) =>
                    {
                        receiver.Reset();
                        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = HttpConcurrency });
                        var url = new Uri(receiver.Url);
                        var result = await EndToEnd.RunHandLoopAsync(brokers, topic, $"{topic}-hand-{round}", messages, values =>
                            Parallel.ForEachAsync(values, new ParallelOptions { MaxDegreeOfParallelism = HttpConcurrency }, async (value, cancel) =>
                            {
                                using var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(PipelineRow.From(value), PipelineJson.Default.PipelineRow));
                                content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                                using var response = await client.PostAsync(url, content, cancel);
                                response.EnsureSuccessStatusCode();
                            }));
                        return await Checked(messages, result, () => Task.FromResult(receiver.Requests));
                    }));
            }

            foreach (var c in cases) topics[c.Name] = Produce(broker, c.Name, messages);
            // This process's CPU per task for each side (the destination servers' own CPU is not counted): on a shared
            // machine wall time is noise, CPU time much less so.
            var cpu = cases.ToDictionary(c => c.Name, _ => (Drakkar: new List<double>(), Baseline: new List<double>()));
            async Task<double> Measured(Func<string, int, Task<double>> run, string topic, int round, List<double> cpuPerTask)
            {
                var before = Process.GetCurrentProcess().TotalProcessorTime;
                var rate = await run(topic, round);
                cpuPerTask.Add((Process.GetCurrentProcess().TotalProcessorTime - before).TotalMicroseconds / messages);
                return rate;
            }
            for (var round = 0; round < rounds; round++)
            {
                foreach (var c in cases)
                {
                    var (drakkarCpu, baselineCpu) = cpu[c.Name];
                    // Alternate which side goes first, so a warm-up or a neighbour's build hits both alike.
                    if (round % 2 == 0)
                    {
                        c.Row.Drakkar.Add(await Measured(c.Drakkar, topics[c.Name], round, drakkarCpu));
                        c.Row.Reference.Add(await Measured(c.Baseline, topics[c.Name], round, baselineCpu));
                    }
                    else
                    {
                        c.Row.Reference.Add(await Measured(c.Baseline, topics[c.Name], round, baselineCpu));
                        c.Row.Drakkar.Add(await Measured(c.Drakkar, topics[c.Name], round, drakkarCpu));
                    }
                    progress(string.Create(CultureInfo.InvariantCulture,
                        $"{c.Name} round {round + 1}: drakkar {c.Row.Drakkar[^1]:F0}/s ({drakkarCpu[^1]:F1} µs CPU/task), hand loop {c.Row.Reference[^1]:F0}/s ({baselineCpu[^1]:F1} µs CPU/task)"));
                }
            }
            foreach (var c in cases)
            {
                var (drakkarCpu, baselineCpu) = cpu[c.Name];
                c.Row.Note = string.Create(CultureInfo.InvariantCulture,
                    $"{1e6 / Samples.Median(c.Row.Drakkar):F1} µs/task vs {1e6 / Samples.Median(c.Row.Reference):F1} µs/task; process CPU {Samples.Median(drakkarCpu):F1} vs {Samples.Median(baselineCpu):F1} µs/task");
                if (c.Name == "pipeline-http")
                    c.Row.Note += $"; the HTTP sink opened {string.Join(", ", DrakkarConnections)} connections per run (it sets no per-server bound)";
            }
            return [.. cases.Select(c => c.Row)];
        }
        finally
        {
            foreach (var item in cleanup) item.Dispose();
        }
    }

    private static readonly List<int> DrakkarConnections = [];

    private static string Produce(EmbeddedKafkaBroker broker, string name, int messages)
    {
        var kept = EndToEnd.Produce(broker, name, messages);
        if (kept < messages) throw new InvalidOperationException($"the embedded broker kept {kept} of {messages} records of {name}");
        return name;
    }

    /// <summary>The rate, after checking that every record arrived where it should (a fast run that lost rows is no result).</summary>
    private static async Task<double> Checked(int messages, (double Seconds, long Committed) run, Func<Task<long>> written)
    {
        var count = await written();
        if (count < messages) throw new InvalidOperationException($"committed {run.Committed} records but only {count} of {messages} were written");
        return messages / run.Seconds;
    }

    // ---- PostgreSQL -----------------------------------------------------------------------------------------

    private static async Task Sql(string dsn, string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(dsn);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> Count(string dsn)
    {
        await using var connection = new Npgsql.NpgsqlConnection(dsn);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand($"SELECT count(*) FROM {Table}", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task CopyAsync(Npgsql.NpgsqlConnection connection, IReadOnlyList<string> values)
    {
        await using var writer = await connection.BeginBinaryImportAsync($"COPY {Table} (id, count, score, note) FROM STDIN (FORMAT BINARY)");
        foreach (var value in values)
        {
            var row = PipelineRow.From(value);
            await writer.StartRowAsync();
            await writer.WriteAsync(row.Id, NpgsqlTypes.NpgsqlDbType.Text);
            await writer.WriteAsync(row.Count, NpgsqlTypes.NpgsqlDbType.Integer);
            await writer.WriteAsync(row.Score, NpgsqlTypes.NpgsqlDbType.Double);
            await writer.WriteAsync(row.Note, NpgsqlTypes.NpgsqlDbType.Text);
        }
        await writer.CompleteAsync();
    }

    // ---- Redis ----------------------------------------------------------------------------------------------

    private static async Task<long> DbSize(int port) =>
        long.Parse((await RespAsync(port, ["DBSIZE"])).TrimStart(':').Trim(), CultureInfo.InvariantCulture);

    private static async Task<string> RespAsync(int port, string[] command)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var stream = client.GetStream();
        await stream.WriteAsync(RespPipeline.Encode(command));
        var buffer = new byte[256];
        var read = await stream.ReadAsync(buffer);
        return Encoding.ASCII.GetString(buffer, 0, read);
    }

    /// <summary>A minimal RESP client: SETs written {RedisPipeline} at a time on one connection, then their replies read.</summary>
    private sealed class RespPipeline : IDisposable
    {
        private static readonly byte[] Ok = "+OK\r\n"u8.ToArray();
        private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        private readonly MemoryStream _out = new();
        private readonly byte[] _replies = new byte[RedisPipeline * Ok.Length];

        public RespPipeline(int port) => _socket.Connect(IPAddress.Loopback, port);

        public void Set(IReadOnlyList<string> values)
        {
            for (var start = 0; start < values.Count; start += RedisPipeline)
            {
                var count = Math.Min(RedisPipeline, values.Count - start);
                _out.SetLength(0);
                for (var i = start; i < start + count; i++)
                {
                    var json = JsonSerializer.SerializeToUtf8Bytes(PipelineRow.From(values[i]), PipelineJson.Default.PipelineRow);
                    Append(_out, "*3\r\n$3\r\nSET\r\n");
                    AppendBulk(_out, Encoding.UTF8.GetBytes("row:" + values[i]));
                    AppendBulk(_out, json);
                }
                _socket.Send(_out.GetBuffer().AsSpan(0, (int)_out.Length));
                var expected = count * Ok.Length;
                for (var got = 0; got < expected;)
                {
                    var read = _socket.Receive(_replies.AsSpan(got, expected - got));
                    if (read == 0) throw new IOException("redis closed the connection");
                    got += read;
                }
                for (var i = 0; i < expected; i += Ok.Length)
                {
                    if (!_replies.AsSpan(i, Ok.Length).SequenceEqual(Ok))
                        throw new InvalidOperationException("redis answered a SET with " + Encoding.ASCII.GetString(_replies, 0, expected));
                }
            }
        }

        public static byte[] Encode(string[] command)
        {
            var stream = new MemoryStream();
            Append(stream, $"*{command.Length}\r\n");
            foreach (var part in command) AppendBulk(stream, Encoding.UTF8.GetBytes(part));
            return stream.ToArray();
        }

        private static void Append(MemoryStream stream, string text) => stream.Write(Encoding.ASCII.GetBytes(text));

        private static void AppendBulk(MemoryStream stream, byte[] bytes)
        {
            Append(stream, string.Create(CultureInfo.InvariantCulture, $"${bytes.Length}\r\n"));
            stream.Write(bytes);
            stream.Write("\r\n"u8);
        }

        public void Dispose() => _socket.Dispose();
    }

    // ---- files ----------------------------------------------------------------------------------------------

    private static long Lines(string path)
    {
        if (!File.Exists(path)) return 0;
        long lines = 0;
        using var stream = File.OpenRead(path);
        var buffer = new byte[64 * 1024];
        for (int read; (read = stream.Read(buffer)) > 0;) lines += buffer.AsSpan(0, read).Count((byte)'\n');
        return lines;
    }

    private sealed class Deleter(string directory) : IDisposable
    {
        public void Dispose()
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }
}

/// <summary>
/// A minimal HTTP/1.1 receiver on raw sockets (TCP_NODELAY, keep-alive): reads each request's headers and
/// Content-Length body, answers <c>200 {}</c>, counts requests and connections. Fast enough that the client side
/// is what gets measured (HttpListener-based fixtures stall on delayed ACKs).
/// </summary>
internal sealed class FastHttpReceiver : IDisposable
{
    private static readonly byte[] Answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"u8.ToArray();
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();
    private long _requests;
    private int _connections;

    public FastHttpReceiver()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(512);
        Url = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndPoint!).Port}/rows";
        _ = AcceptAsync();
    }

    public string Url { get; }

    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Connections accepted since the last <see cref="Reset"/>.</summary>
    public int Connections => Volatile.Read(ref _connections);

    public void Reset()
    {
        Interlocked.Exchange(ref _requests, 0);
        Interlocked.Exchange(ref _connections, 0);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            socket.NoDelay = true;
            Interlocked.Increment(ref _connections);
            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        using var _ = socket;
        var buffer = new byte[64 * 1024];
        int filled = 0;
        try
        {
            while (true)
            {
                // Answer every complete request in the buffer, then read more.
                var start = 0;
                while (TryParse(buffer.AsSpan(start, filled - start), out var length))
                {
                    start += length;
                    Interlocked.Increment(ref _requests);
                    await socket.SendAsync(Answer, SocketFlags.None, _stop.Token);
                }
                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, filled - start);
                    filled -= start;
                }
                if (filled == buffer.Length) throw new InvalidOperationException("request larger than the receiver's buffer");
                var read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, _stop.Token);
                if (read == 0) return;
                filled += read;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>True when <paramref name="data"/> starts with a whole request; <paramref name="length"/> is its size.</summary>
    private static bool TryParse(ReadOnlySpan<byte> data, out int length)
    {
        length = 0;
        var end = data.IndexOf("\r\n\r\n"u8);
        if (end < 0) return false;
        var body = 0;
        foreach (var range in data[..end].Split("\r\n"u8))
        {
            var line = data[..end][range];
            if (line.Length > 15 && Ascii.EqualsIgnoreCase(line[..15], "content-length:"u8))
                body = int.Parse(Encoding.ASCII.GetString(line[15..]).Trim(), CultureInfo.InvariantCulture);
        }
        length = end + 4 + body;
        return data.Length >= length;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        _stop.Dispose();
    }
}
