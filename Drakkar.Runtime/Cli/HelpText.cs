namespace Drakkar.Cli;

/// <summary>The <c>--help</c> pages of the worker binary's commands.</summary>
internal static class HelpText
{
    public static string For(string command, string program, string? description) => command switch
    {
        "check-config" => $"""
            usage: {program} check-config [--config PATH]

            Loads and validates the configuration exactly as 'run' would, then prints the effective values (defaults,
            file and DK_* overrides merged) with every secret masked. Exits 0 when valid; otherwise prints every
            problem with its key path and exits 2.

            options:
              --config PATH   configuration file (default: $DK_CONFIG, else ./drakkar.yaml, else built-in defaults)
              -h, --help      show this help

            """,
        _ => $$"""
            usage: {{program}} [command] [options]
            {{(description is null ? "" : Environment.NewLine + description + Environment.NewLine)}}
            commands:
              run             consume the source topic and process it (the default command)
              check-config    validate the configuration and print it with secrets masked

            options:
              --config PATH   configuration file (default: $DK_CONFIG, else ./drakkar.yaml, else built-in defaults)
              -h, --help      show help; '{{program}} <command> --help' shows a command's own

            Configuration keys follow Python Drakkar (kafka, executor, sinks, dlq, metrics, logging, debug, cache).
            Environment variables DK_SECTION__KEY override the file; ${VAR} and ${VAR:-default} expand inside it.
            SIGTERM or SIGINT drains in-flight work, commits and exits 0; a second signal exits at once.

            """,
    };
}
