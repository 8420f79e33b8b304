namespace Drakkar.Cli;

/// <summary>A parsed command line: the command, its options (<c>--name value</c> or flags) and what was wrong.</summary>
internal sealed class CommandLine
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);

    private CommandLine(string command) => Command = command;

    public string Command { get; }

    /// <summary>Whether the command was named on the line (false when <c>run</c> is taken as the default).</summary>
    public bool CommandNamed { get; private init; }

    public bool Help { get; private set; }
    public List<string> Errors { get; } = [];

    /// <summary>Configuration settings given as <c>--section:key=value</c> or <c>--section:key value</c>, in order.</summary>
    public List<string> Settings { get; } = [];

    /// <summary>
    /// Parses <paramref name="args"/>. The first word that is not an option is the command (default <c>run</c>);
    /// each command lists the options that take a value and the flags that don't; commands that read the
    /// configuration (those with <c>--config</c>) also take <c>--section:key=value</c> settings; anything else is an error.
    /// </summary>
    public static CommandLine Parse(string[] args, IReadOnlyDictionary<string, (string[] ValueOptions, string[] Flags)> commands)
    {
        var index = 0;
        var command = "run";
        if (args.Length > 0 && !args[0].StartsWith('-'))
        {
            command = args[0];
            index = 1;
        }
        var line = new CommandLine(command) { CommandNamed = index == 1 };
        if (!commands.TryGetValue(command, out var known))
        {
            line.Errors.Add($"unknown command '{command}' (commands: {string.Join(", ", commands.Keys)})");
            return line;
        }
        for (; index < args.Length; index++)
        {
            var arg = args[index];
            if (arg is "-h" or "--help")
            {
                line.Help = true;
                continue;
            }
            var (name, inlineValue) = arg.Split('=', 2) is [var n, var v] && n.StartsWith("--", StringComparison.Ordinal) ? (n, v) : (arg, null);
            var isSetting = name.StartsWith("--", StringComparison.Ordinal) && name.Contains(':', StringComparison.Ordinal)
                            && known.ValueOptions.Contains("--config");
            if (isSetting || known.ValueOptions.Contains(name))
            {
                var value = inlineValue ?? (index + 1 < args.Length ? args[++index] : null);
                if (value is null) line.Errors.Add($"{name} needs a value");
                else if (isSetting) line.Settings.Add($"{name}={value}");
                else line._options[name] = value;
            }
            else if (known.Flags.Contains(name) && inlineValue is null)
            {
                line._options[name] = null;
            }
            else
            {
                var suggestion = name.StartsWith('-') ? Configuration.KeySuggester.Closest(name, [.. known.ValueOptions, .. known.Flags]) : null;
                line.Errors.Add((name.StartsWith('-') ? $"unknown option '{arg}' for '{command}'" : $"unexpected argument '{arg}' for '{command}'") +
                    (suggestion is null ? "" : $"; did you mean '{suggestion}'?"));
                // A misspelt option's value is that option's, not another error of its own.
                if (name.StartsWith("--", StringComparison.Ordinal) && inlineValue is null && index + 1 < args.Length && !args[index + 1].StartsWith('-')) index++;
            }
        }
        return line;
    }

    public string? Value(string name) => _options.TryGetValue(name, out var value) ? value : null;

    public bool Flag(string name) => _options.ContainsKey(name);

    /// <summary>An integer option of at least <paramref name="minimum"/>, or <paramref name="fallback"/>; a malformed value is recorded as an error.</summary>
    public int? Integer(string name, int? fallback = null, int minimum = 0) => (int?)Number(name, fallback, minimum, int.MaxValue);

    /// <summary>A 64-bit option (a Kafka offset), at least 0; a malformed value is recorded as an error.</summary>
    public long? Long(string name) => Number(name, null, 0, long.MaxValue);

    private long? Number(string name, long? fallback, long minimum, long maximum)
    {
        var text = Value(name);
        if (text is null) return fallback;
        if (long.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value)
            && value >= minimum && value <= maximum)
        {
            return value;
        }
        Errors.Add($"{name} must be a whole number ≥ {minimum}{(value > maximum ? $" and ≤ {maximum}" : "")} (got '{text}')");
        return fallback;
    }
}
