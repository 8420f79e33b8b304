using System.Text;
using Confluent.Kafka;
using Drakkar.Hosting;
using Drakkar.Kafka;
using Drakkar.Sinks;
using Drakkar.Sinks.Dlq;
using Drakkar.Sinks.Kafka;
using Microsoft.Extensions.Logging.Abstractions;

namespace Drakkar.Cli;

/// <summary>
/// <c>replay-dlq</c> (SPEC S16): reads the DLQ topic from its beginning (or <c>--from</c>) up to the end it had when
/// the command started, and republishes each record's original payloads to <c>--target-topic</c> with the source key
/// and headers restored. Reading uses manual assignment and never commits, so a replay changes nothing on the DLQ side
/// and can be repeated.
/// </summary>
internal sealed class ReplayDlqCommand
{
    public const string Name = "replay-dlq";
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitUsage = 2;

    /// <summary>Conventional exit code for a run stopped by SIGINT/SIGTERM after flushing (128 + SIGINT).</summary>
    public const int ExitInterrupted = 130;

    public static readonly (string[] ValueOptions, string[] Flags) Options =
        (["--config", "--target-topic", "--target-brokers", "--dlq-topic", "--filter", "--limit", "--from", "--since"], ["--dry-run", "--source-messages"]);

    private const int ProgressEvery = 1000;

    // Produces awaiting acknowledgement; bounds memory when the target is slower than the DLQ reads.
    private const int MaxInFlight = 1000;
    private static readonly TimeSpan MetadataTimeout = TimeSpan.FromSeconds(15);

    private readonly Settings _settings;
    private readonly TextWriter _stdout;
    private readonly TextWriter _stderr;
    private readonly SinkSecretMasker _masker = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<int, long> _lastRead = [];
    // Every partition's start (its low watermark, or where --from put it): what the resume line gives for a partition
    // with no record replayed, those with nothing to read included.
    private readonly Dictionary<int, long> _starts = [];
    private long _beforeSince;
    private readonly Dictionary<int, (long Offset, long? Previous)> _firstFailure = [];
    private long _read;
    private long _published;
    private long _wouldPublish;
    private long _filteredOut;
    private long _errors;
    private volatile bool _produceFailed;
    // --source-messages: the source messages this run has republished. A message whose results failed in two sinks has
    // a record from each; replayed once, every sink gets its results again, so it is republished only once.
    private readonly HashSet<(string Topic, int Partition, long Offset)> _republishedSources = [];
    private long _repeatedSources;

    private ReplayDlqCommand(Settings settings, TextWriter stdout, TextWriter stderr)
    {
        _settings = settings;
        _stdout = stdout;
        _stderr = TextWriter.Synchronized(stderr);
        _masker.AddCredentialsOf(settings.DlqBrokers);
        _masker.AddCredentialsOf(settings.TargetBrokers);
    }

    // Security: the kafka section whose security_protocol, sasl_* and ssl_* keys both clients connect with.
    // SourceMessages: republish the source messages each record names, read again from kafka.brokers, instead of its payloads.
    // From: where to start reading the partitions it names (--from, as the resume line prints it). Since: records written
    // before it are passed over (--since).
    private sealed record Settings(string DlqTopic, string DlqBrokers, string? TargetTopic, string TargetBrokers, string? Filter, long? Limit, bool DryRun,
        KafkaConfig Security, bool SourceMessages, IReadOnlyDictionary<int, long> From, DateTimeOffset? Since);

    /// <summary>
    /// The command as the worker binary runs it, with everything after <c>replay-dlq</c> as <paramref name="args"/>:
    /// parses, loads the configuration (<paramref name="defaultConfig"/> when no file is found), replays, and
    /// returns the exit code. Output goes only to the writers given, so it can run inside another process.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken,
        Func<DrakkarConfig>? defaultConfig = null, string program = "worker")
    {
        var line = CommandLine.Parse([Name, .. args], new Dictionary<string, (string[], string[])> { [Name] = Options });
        if (line.Errors.Count > 0)
        {
            foreach (var error in line.Errors) stderr.WriteLine($"error: {error}");
            stderr.WriteLine($"Run '{program} {Name} --help' for usage.");
            return ExitUsage;
        }
        if (line.Help)
        {
            stdout.Write(HelpText.For(Name, program, null));
            return ExitOk;
        }
        var config = DrakkarApp.LoadConfig(line, new DrakkarAppOptions { DefaultConfig = defaultConfig }, stderr);
        if (config is null) return ExitUsage;
        return await RunAsync(line, config, stdout, stderr, cancellationToken, program).ConfigureAwait(false);
    }

    /// <summary>Replays with an already parsed command line and loaded configuration.</summary>
    internal static async Task<int> RunAsync(CommandLine line, DrakkarConfig config, TextWriter stdout, TextWriter stderr,
        CancellationToken cancellationToken, string program = "worker")
    {
        var settings = Resolve(line, config, out var problems);
        if (settings is null)
        {
            foreach (var problem in problems) stderr.WriteLine($"error: {problem}");
            stderr.WriteLine($"Run '{program} {Name} --help' for usage.");
            return ExitUsage;
        }
        return await Task.Run(() => new ReplayDlqCommand(settings, stdout, stderr).ExecuteAsync(cancellationToken), CancellationToken.None)
            .ConfigureAwait(false);
    }

    private static Settings? Resolve(CommandLine line, DrakkarConfig config, out List<string> problems)
    {
        problems = [];
        // Zero would read nothing and say nothing was left to replay.
        var limit = line.Integer("--limit", minimum: 1);
        problems.AddRange(line.Errors);
        var dryRun = line.Flag("--dry-run");
        var target = line.Value("--target-topic");
        if (string.IsNullOrWhiteSpace(target) && !dryRun) problems.Add("--target-topic is required (unless --dry-run)");
        var dlqTopic = line.Value("--dlq-topic") is { Length: > 0 } topic ? topic : KafkaDeadLetterQueue.TopicFor(config.Dlq, config.Kafka.SourceTopic);
        var dlqBrokers = KafkaDeadLetterQueue.BrokersFor(config.Dlq, config.Kafka);
        var targetBrokers = line.Value("--target-brokers") is { Length: > 0 } brokers ? brokers : config.Kafka.Brokers;
        if (IsEmbedded(dlqBrokers))
            problems.Add("the DLQ brokers are 'embedded' (an in-process broker that only exists while a worker runs); set dlq.brokers or kafka.brokers " +
                "to the running worker's broker, in the configuration or as DK_KAFKA__BROKERS=HOST:PORT");
        // A dry run publishes nothing, so it needs no target.
        if (IsEmbedded(targetBrokers) && !dryRun)
            problems.Add("the target brokers are 'embedded'; pass --target-brokers HOST:PORT");
        var sourceMessages = line.Flag("--source-messages");
        if (sourceMessages && IsEmbedded(config.Kafka.Brokers) && !IsEmbedded(dlqBrokers))
            problems.Add("--source-messages reads kafka.brokers, which is 'embedded'; set it to the running worker's broker (DK_KAFKA__BROKERS=HOST:PORT)");
        if (string.IsNullOrWhiteSpace(dlqTopic) || dlqTopic == "_dlq")
            problems.Add("no DLQ topic: set dlq.topic or kafka.source_topic in the configuration, or pass --dlq-topic");
        var filter = line.Value("--filter");
        var from = ParseFrom(line.Value("--from"), problems);
        var since = ParseSince(line.Value("--since"), DateTimeOffset.UtcNow, problems);
        return problems.Count > 0
            ? null
            : new Settings(dlqTopic, dlqBrokers, string.IsNullOrWhiteSpace(target) ? null : target, targetBrokers,
                string.IsNullOrEmpty(filter) ? null : filter, limit, dryRun, config.Kafka, sourceMessages, from, since);
    }

    /// <summary><c>--from 0:124,1:57</c>: the offset to start reading at per DLQ partition (the others start at their beginning).</summary>
    internal static Dictionary<int, long> ParseFrom(string? text, List<string> problems)
    {
        var from = new Dictionary<int, long>();
        if (text is null) return from;
        foreach (var pair in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var parts = pair.Split(':');
            if (parts.Length != 2
                || !int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var partition)
                || !long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var offset))
            {
                problems.Add($"--from takes PARTITION:OFFSET pairs separated by commas, as a failed run prints them (\"to resume: --from 0:124,1:57\"); got '{pair}'");
                continue;
            }
            if (!from.TryAdd(partition, offset)) problems.Add($"--from names partition {partition} twice");
        }
        return from;
    }

    /// <summary><c>--since</c>: a time (ISO 8601; UTC unless it says otherwise), or a duration back from <paramref name="now"/> (<c>90m</c>, <c>2h</c>, <c>1d</c>).</summary>
    internal static DateTimeOffset? ParseSince(string? text, DateTimeOffset now, List<string> problems)
    {
        if (text is null) return null;
        var unit = text.Length > 1 ? text[^1] switch { 's' => TimeSpan.FromSeconds(1), 'm' => TimeSpan.FromMinutes(1), 'h' => TimeSpan.FromHours(1), 'd' => TimeSpan.FromDays(1), _ => (TimeSpan?)null } : null;
        if (unit is { } u && long.TryParse(text.AsSpan(0, text.Length - 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var amount)
            && amount <= TimeSpan.MaxValue / u / 2)
        {
            return now - u * amount;
        }
        if (DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out var at))
        {
            return at;
        }
        problems.Add($"--since takes a time (2026-12-06T07:00:00Z; UTC unless an offset is given) or a duration back from now (90s, 30m, 2h, 1d); got '{text}'");
        return null;
    }

    private static bool IsEmbedded(string brokers) => string.Equals(brokers.Trim(), WorkerHost.EmbeddedBrokers, StringComparison.OrdinalIgnoreCase);

    private async Task<int> ExecuteAsync(CancellationToken cancellationToken)
    {
        KafkaNativeLibrary.EnsureLoaded();
        using var consumer = new ConsumerBuilder<byte[]?, byte[]>(KafkaSecurity.Apply(new ConsumerConfig
            {
                BootstrapServers = _settings.DlqBrokers,
                GroupId = $"drakkar-replay-dlq-{Guid.NewGuid():N}",
                EnableAutoCommit = false,
                EnableAutoOffsetStore = false,
                EnablePartitionEof = true,
                AutoOffsetReset = AutoOffsetReset.Earliest,
            }, _settings.Security, _masker))
            // librdkafka's own chatter would interleave with the progress lines; failures surface as exceptions below.
            .SetLogHandler((_, _) => { })
            .SetErrorHandler((_, _) => { })
            .Build();

        Dictionary<int, long> ends;
        long total;
        try
        {
            (ends, total) = Plan(consumer);
        }
        catch (ArgumentException e)
        {
            _stderr.WriteLine($"error: {e.Message}");
            return ExitUsage;
        }
        catch (Exception e) when (e is KafkaException or InvalidOperationException)
        {
            _stderr.WriteLine($"error: cannot read the DLQ topic '{_settings.DlqTopic}' on {SinkSecretMasker.Url(_settings.DlqBrokers)}: {_masker.Apply(e.Message)}");
            return ExitUsage;
        }
        _stderr.WriteLine($"{Name}: {total} records in {_settings.DlqTopic} ({ends.Count} non-empty partitions{Starting(ends)}) -> " +
            (_settings.DryRun ? "dry run, nothing is published" : $"{_settings.TargetTopic} on {SinkSecretMasker.Url(_settings.TargetBrokers)}"));

        using var producer = _settings.DryRun
            ? null
            : KafkaProducers.Build(KafkaSecurity.Apply(new ProducerConfig
            {
                BootstrapServers = _settings.TargetBrokers,
                Acks = Acks.All,
                LingerMs = 5,
                MessageTimeoutMs = 30_000,
            }, _settings.Security, _masker), NullLogger.Instance, _masker, Name);
        using var sources = _settings.SourceMessages ? new SourceRecordReader(_settings.Security.Brokers, _settings.Security, _masker) : null;
        using var inFlight = new SemaphoreSlim(MaxInFlight, MaxInFlight);
        var settling = new List<Task>();
        var remaining = new HashSet<int>(ends.Keys);

        while (remaining.Count > 0 && !cancellationToken.IsCancellationRequested && !_produceFailed
            && (_settings.Limit is not { } limit || _read < limit))
        {
            ConsumeResult<byte[]?, byte[]>? record;
            try
            {
                record = consumer.Consume(TimeSpan.FromMilliseconds(250));
            }
            catch (ConsumeException e)
            {
                _stderr.WriteLine($"error: reading {_settings.DlqTopic} failed: {_masker.Apply(e.Error.Reason)}");
                Interlocked.Increment(ref _errors);
                _produceFailed = true;
                break;
            }
            if (record is null) continue;
            var partition = record.Partition.Value;
            if (record.IsPartitionEOF || !ends.TryGetValue(partition, out var end) || record.Offset.Value >= end)
            {
                remaining.Remove(partition);
                continue;
            }
            if (_settings.Since is { } since && record.Message.Timestamp.UtcDateTime < since.UtcDateTime)
            {
                // Passed over, as done: a resume point after it is as good as one before.
                _beforeSince++;
                lock (_gate) _lastRead[partition] = record.Offset.Value;
                if (record.Offset.Value >= end - 1) remaining.Remove(partition);
                continue;
            }
            var read = Interlocked.Increment(ref _read);
            var settle = await ReplayRecordAsync(record, producer, inFlight, sources, cancellationToken).ConfigureAwait(false);
            if (settle is not null)
            {
                settling.Add(settle);
                if (settling.Count >= 4 * MaxInFlight) settling.RemoveAll(t => t.IsCompleted);
            }
            if (record.Offset.Value >= end - 1) remaining.Remove(partition);
            if (read % ProgressEvery == 0) Progress(total);
        }

        // Interrupted or not, what was handed to the producer is awaited, so every count below is final.
        await Task.WhenAll(settling).ConfigureAwait(false);
        producer?.Flush(TimeSpan.FromSeconds(30));
        if (_read % ProgressEvery != 0) Progress(total);

        var interrupted = cancellationToken.IsCancellationRequested && remaining.Count > 0
            && !(_settings.Limit is { } reachedLimit && _read >= reachedLimit);
        if (_beforeSince > 0)
            _stderr.WriteLine($"{_beforeSince} record(s) written before --since {_settings.Since!.Value.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'} were passed over");
        if (_repeatedSources > 0)
            _stderr.WriteLine($"{_repeatedSources} source message(s) named by more than one record {(_settings.DryRun ? "would be" : "were")} republished once");
        if (_settings.DryRun)
            _stderr.WriteLine($"dry run: {_wouldPublish} messages would be published{(_settings.TargetTopic is { } t ? " to " + t : "")}");
        var exitCode = Interlocked.Read(ref _errors) > 0 ? ExitFailure : interrupted ? ExitInterrupted : ExitOk;
        if (interrupted) _stderr.WriteLine("interrupted: in-flight produces finished and flushed; the rest of the DLQ was not read");
        // Stopped by --limit before the end: where the next batch starts.
        var limited = _settings.Limit is { } limitOf && _read >= limitOf && remaining.Count > 0;
        if (exitCode != ExitOk || limited) PrintResumePoints(ends.Keys);
        _stdout.WriteLine($"summary: read={_read} published={Interlocked.Read(ref _published)} filtered_out={_filteredOut} errors={Interlocked.Read(ref _errors)}");
        _stdout.Flush();
        return exitCode;
    }

    /// <summary>
    /// Assigns every partition with records to read from its low watermark, or from where <c>--from</c> puts it (never
    /// before the low watermark); the high watermarks now are where reading stops.
    /// </summary>
    /// <exception cref="ArgumentException"><c>--from</c> names a partition the topic does not have.</exception>
    private (Dictionary<int, long> Ends, long Total) Plan(IConsumer<byte[]?, byte[]> consumer)
    {
        using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
        // Metadata for every topic: asking for one by name makes brokers with auto-creation create it, and a
        // mistyped DLQ name would then "replay" an empty topic it just made.
        var metadata = admin.GetMetadata(MetadataTimeout);
        var topic = metadata.Topics.SingleOrDefault(t => t.Topic == _settings.DlqTopic);
        if (topic is null || topic.Error.IsError || topic.Partitions.Count == 0)
            throw new InvalidOperationException(topic is { Error.IsError: true } ? topic.Error.Reason
                : "the topic does not exist (it is created with the first dead letter: none was ever written there, or the name is wrong)");
        var partitions = topic.Partitions.Select(p => p.PartitionId).Order().ToList();
        if (_settings.From.Keys.FirstOrDefault(p => !partitions.Contains(p), -1) is var unknown and >= 0)
            throw new ArgumentException($"--from names partition {unknown}, which {_settings.DlqTopic} does not have (its partitions are {string.Join(", ", partitions)})");
        var ends = new Dictionary<int, long>();
        var starts = new List<TopicPartitionOffset>();
        long total = 0;
        foreach (var partition in partitions)
        {
            var tp = new TopicPartition(_settings.DlqTopic, partition);
            var marks = consumer.QueryWatermarkOffsets(tp, MetadataTimeout);
            var start = _settings.From.TryGetValue(partition, out var from) ? Math.Max(from, marks.Low.Value) : marks.Low.Value;
            _starts[partition] = start;
            if (marks.High.Value <= start) continue;
            ends[partition] = marks.High.Value;
            starts.Add(new TopicPartitionOffset(tp, start));
            total += marks.High.Value - start;
        }
        consumer.Assign(starts);
        return (ends, total);
    }

    /// <summary>Filters and republishes one DLQ record; returns the task that settles its produces, if it has any.</summary>
    private async Task<Task?> ReplayRecordAsync(ConsumeResult<byte[]?, byte[]> record, IProducer<byte[]?, byte[]>? producer, SemaphoreSlim inFlight,
        SourceRecordReader? sources, CancellationToken cancellationToken)
    {
        var partition = record.Partition.Value;
        var offset = record.Offset.Value;
        long? previous;
        lock (_gate)
        {
            previous = _lastRead.TryGetValue(partition, out var last) ? last : null;
            _lastRead[partition] = offset;
        }

        IReadOnlyList<ReplayMessage> messages;
        (string Topic, int Partition, IReadOnlyList<long> Offsets)? named = null;
        try
        {
            if (sources is null)
            {
                messages = DeadLetterEnvelope.Parse(record.Message.Value, record.Message.Key, Kafka.KafkaHeaders.Of(record.Message.Headers));
            }
            else
            {
                named = DeadLetterEnvelope.SourceOf(record.Message.Value);
                messages = sources.Read(named.Value, cancellationToken);
            }
        }
        catch (FormatException e)
        {
            Interlocked.Increment(ref _errors);
            // Its own words say why: not a DLQ record at all, or one of the worker's that cannot be replayed this way.
            _stderr.WriteLine($"error: {_settings.DlqTopic}[{partition}]@{offset} cannot be replayed and was skipped: {e.Message}");
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or SourceReadException or KafkaException)
        {
            Interlocked.Increment(ref _errors);
            _stderr.WriteLine($"error: {_settings.DlqTopic}[{partition}]@{offset} was skipped: {_masker.Apply(e.Message)}");
            return null;
        }
        if (_settings.Filter is { } filter && !Matches(record.Message.Value, messages, filter))
        {
            _filteredOut++;
            return null;
        }
        if (named is { } source)
        {
            // Read aligned with the offsets the record names: keep those this run has not republished yet.
            var fresh = messages.Where((_, i) => _republishedSources.Add((source.Topic, source.Partition, source.Offsets[i]))).ToList();
            _repeatedSources += messages.Count - fresh.Count;
            messages = fresh;
        }
        if (producer is null)
        {
            _wouldPublish += messages.Count;
            return null;
        }

        var produces = new Task[messages.Count];
        for (var i = 0; i < messages.Count; i++)
        {
            await inFlight.WaitAsync().ConfigureAwait(false);
            produces[i] = ProduceAsync(producer, messages[i], inFlight);
        }
        return SettleAsync(produces, partition, offset, previous);
    }

    /// <summary>The filter matches the record's JSON text, or any original payload as its own (unescaped) text.</summary>
    private static bool Matches(byte[] value, IReadOnlyList<ReplayMessage> messages, string filter) =>
        Encoding.UTF8.GetString(value).Contains(filter, StringComparison.Ordinal)
        || messages.Any(m => Encoding.UTF8.GetString(m.Value).Contains(filter, StringComparison.Ordinal));

    private async Task ProduceAsync(IProducer<byte[]?, byte[]> producer, ReplayMessage message, SemaphoreSlim inFlight)
    {
        try
        {
            await producer.ProduceAsync(_settings.TargetTopic!, new Message<byte[]?, byte[]>
            {
                Key = message.Key,
                Value = message.Value,
                Headers = KafkaProducers.Headers(message.Headers),
            }).ConfigureAwait(false);
            Interlocked.Increment(ref _published);
        }
        finally
        {
            inFlight.Release();
        }
    }

    private async Task SettleAsync(Task[] produces, int partition, long offset, long? previous)
    {
        try
        {
            await Task.WhenAll(produces).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref _errors);
            _produceFailed = true;
            var reason = e is ProduceException<byte[]?, byte[]> produce ? produce.Error.Reason : e.Message;
            lock (_gate)
            {
                if (!_firstFailure.TryGetValue(partition, out var first) || offset < first.Offset)
                    _firstFailure[partition] = (offset, previous);
                _stderr.WriteLine($"error: publishing {_settings.DlqTopic}[{partition}]@{offset} to {_settings.TargetTopic} failed: {_masker.Apply(reason)}");
            }
        }
    }

    private void Progress(long total) =>
        _stderr.WriteLine($"{Name}: read {_read}/{total}, published {Interlocked.Read(ref _published)}, " +
            $"filtered out {_filteredOut}, errors {Interlocked.Read(ref _errors)}");

    /// <summary>
    /// Per partition, the last DLQ offset up to which every record was replayed (or deliberately passed over), so
    /// an operator can resume after it.
    /// </summary>
    private void PrintResumePoints(IEnumerable<int> partitions)
    {
        lock (_gate)
        {
            foreach (var partition in partitions.Order())
            {
                var last = LastDone(partition);
                _stderr.WriteLine($"last DLQ offset settled: {_settings.DlqTopic}[{partition}] = {(last is { } value ? value.ToString(System.Globalization.CultureInfo.InvariantCulture) : "none")}" +
                    " (it and every record before it replayed, filtered out, or skipped with an error above)");
            }
            // Every partition, those with nothing to read too: one left out would start again at its beginning.
            var resume = _starts.OrderBy(s => s.Key).Select(s => $"{s.Key}:{LastDone(s.Key) + 1 ?? s.Value}");
            _stderr.WriteLine($"to resume: --from {string.Join(",", resume)}");
        }
    }

    /// <summary>The partition's last offset up to which every record was replayed or passed over; null when none was.</summary>
    private long? LastDone(int partition) =>
        _firstFailure.TryGetValue(partition, out var failure) ? failure.Previous : _lastRead.TryGetValue(partition, out var read) ? read : null;

    /// <summary>For the first line: where reading starts when <c>--from</c> moved it.</summary>
    private string Starting(IReadOnlyDictionary<int, long> ends) => _settings.From.Count == 0 ? ""
        : "; starting at " + string.Join(", ", _starts.Where(s => ends.ContainsKey(s.Key)).OrderBy(s => s.Key).Select(s => $"[{s.Key}]@{s.Value}"));
}
