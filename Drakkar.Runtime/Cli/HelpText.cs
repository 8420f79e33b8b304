namespace Drakkar.Cli;

/// <summary>The <c>--help</c> pages of the worker binary's commands.</summary>
internal static class HelpText
{
    /// <summary>
    /// The page of <paramref name="command"/>; the program's page (its commands) for any other, and for <c>run</c>
    /// when it was not named (<c>my-worker --help</c>).
    /// </summary>
    public static string For(string command, string program, string? description) => command switch
    {
        "run" => $"""
            usage: {program} run [--config PATH] [--section:key=V ...]
                   {program} [--config PATH] [--section:key=V ...]   ('run' is the default command)

            Joins kafka.consumer_group on kafka.source_topic, turns each window of messages into executor tasks,
            passes every result through the handler's hooks, delivers the payloads they return to the configured
            sinks, and commits a message's offset once everything that came from it is settled (delivered, or
            written to the dead letter queue). Runs until a signal.

            options:
              --config PATH   configuration file (default: $DK_CONFIG, else ./drakkar.yaml, else the program's
                              built-in default configuration; with the built-in one, DK_* variables and
                              --section:key settings are ignored, with a warning naming them)
              --section:key=V one configuration key, over the file, appsettings.json and DK_* variables
              -h, --help      show this help

            SIGTERM or SIGINT drains in-flight work, commits and exits 0; a second signal kills the running task
            processes and exits 130 at once.

            exit codes: 0 after a graceful stop; 1 start-up failed (a hook threw, a sink could not connect, the
            executor binary cannot be run); 2 bad configuration or command line; 130 second signal.

            """,
        "check-config" => $"""
            usage: {program} check-config [--config PATH]

            Loads and validates the configuration exactly as 'run' would, then prints the effective values (defaults,
            file and DK_* overrides merged) with every secret masked. Exits 0 when valid; otherwise prints every
            problem with its key path and exits 2.

            options:
              --config PATH   configuration file (default: $DK_CONFIG, else ./drakkar.yaml, else built-in defaults)
              --section:key=V one configuration key, over the file, appsettings.json and DK_* variables
              -h, --help      show this help

            """,
        ReplayDlqCommand.Name => $$"""
            usage: {{program}} replay-dlq --target-topic TOPIC [--target-brokers HOSTS] [--dlq-topic TOPIC]
                   [--filter TEXT] [--limit N] [--from P:OFFSET,...] [--since TIME] [--dry-run] [--source-messages]
                   [--config PATH]

            Reads the dead letter queue from its beginning (or --from) up to where it ends when the command
            starts, and republishes every record's original payloads (one message per payload, the JSON as the
            worker made it) to TOPIC, with the source message's key and headers restored. The DLQ is read without a consumer group
            commit, so a replay can be repeated; nothing on the DLQ changes.

            The DLQ is dlq.topic (default {kafka.source_topic}_dlq) on dlq.brokers (default kafka.brokers), from
            the same configuration the worker uses.

            options:
              --target-topic TOPIC     where to republish (required unless --dry-run)
              --target-brokers HOSTS   bootstrap servers of the target (default: kafka.brokers)
              --dlq-topic TOPIC        read this topic instead of the configured DLQ
              --filter TEXT            replay only records whose JSON, or one of whose payloads, contains TEXT
                                       (case-sensitive substring); the others count as filtered_out
              --limit N                stop after reading N DLQ records (filtered records count); when
                                       records are left, stderr says where the next batch starts (--from)
              --from P:OFFSET,...      start reading DLQ partition P at OFFSET (the others at their beginning):
                                       the "to resume:" line of a failed, interrupted or limited run gives it
              --since TIME             pass over records written before TIME: 2026-12-06T07:00:00Z (UTC unless
                                       an offset is given) or a duration back from now (90s, 30m, 2h, 1d); they
                                       are read, not replayed, and not counted in read=
              --dry-run                read, filter and count; publish nothing
              --source-messages        republish the source messages each record names (source_topic, partition,
                                       offsets), read again from kafka.brokers with their own key and headers,
                                       instead of its payloads: to re-run the worker on the messages of a failed
                                       PostgreSQL/Redis/HTTP/... write, or of a truncated record
              --config PATH            configuration file (default: $DK_CONFIG, else ./drakkar.yaml)
              -h, --help               show this help

            Progress goes to stderr every 1000 records. The last line on stdout is always
              summary: read=N published=N filtered_out=N errors=N
            where published counts messages written (a record may hold several payloads).
            SIGINT or SIGTERM stops reading, waits for in-flight produces and flushes, then prints the summary.

            exit codes: 0 done; 1 a record could not be read or published (stderr names it, the last DLQ offset
            settled per partition, and "to resume: --from ..."); 2 usage or configuration error (also when the
            DLQ topic cannot be read); 130 interrupted after flushing.

            """,
        ProbeCommand.Name => $"""
            usage: {program} probe --partition P --offset O [--count N] [--topic TOPIC] [--config PATH]
                   {program} probe --input MESSAGES.json [--config PATH]

            Runs messages through the worker's handler exactly as the pipeline does (OnStartup, OnReady with no
            PostgreSQL data source, Arrange, the executor, OnTaskComplete/OnError, OnMessageComplete,
            OnWindowComplete) and prints, as JSON on stdout, the payloads each configured sink instance would
            receive. No sink is connected, nothing is delivered or dead-lettered, no offset is committed, and the
            handler's cache is disabled (reads miss, writes are dropped). Tasks do run: their binaries execute.

            Messages come from Kafka, read by assignment (the consumer group is never joined), or from a JSON file:
            an array of objects with "value" (a string, or any JSON written as its compact text) and optional
            "key" (string or null), "headers" (object of strings), "partition" (default 0), "offset" (default:
            the entry's index) and "topic" (default kafka.source_topic). Within a partition, entries are listed
            in increasing offset order, as a consumer sees them.

            options:
              --partition P    source partition to read
              --offset O       first offset to read
              --count N        how many records from there (default 1; fewer when the partition ends)
              --topic TOPIC    topic to read (default kafka.source_topic)
              --input FILE     read the messages from FILE instead of Kafka
              --config PATH    configuration file (default: $DK_CONFIG, else ./drakkar.yaml, else built-in defaults)
              -h, --help       show this help

            exit codes: 0 every message finished; 1 the messages could not be read, none was found, or some
            did not finish within the task timeout (the report then lacks their payloads); 2 usage,
            configuration or messages-file error.

            """,
        _ => $$"""
            usage: {{program}} [command] [options]
            {{(description is null ? "" : Environment.NewLine + description + Environment.NewLine)}}
            commands:
              run             consume the source topic and process it (the default command)
              check-config    validate the configuration and print it with secrets masked
              replay-dlq      republish dead-lettered payloads to a topic (see 'replay-dlq --help')
              probe           print what each sink would receive for given messages (see 'probe --help')

            options:
              --config PATH   configuration file (default: $DK_CONFIG, else ./drakkar.yaml, else built-in defaults)
              --section:key=V one configuration key, over the file, appsettings.json and DK_* variables
              -h, --help      show help; '{{program}} <command> --help' shows a command's own

            Configuration keys follow Python Drakkar (kafka, executor, sinks, dlq, metrics, logging, debug, cache).
            appsettings.json, then DK_SECTION__KEY variables, then --section:key=value override the file;
            ${VAR} and ${VAR:-default} expand inside it.
            SIGTERM or SIGINT drains in-flight work, commits and exits 0; a second signal exits at once.

            """,
    };
}
