// The reference persistent executor child in C#: docs/executor-protocol.md describes every frame it reads and writes.
// Under executor.mode: persistent (DRAKKAR_EXECUTOR_PROTOCOL is set) it prints its ready line and answers one request
// per line on stdin until stdin ends; in spawn mode it runs the one task its argv names and exits with its code.
// Its commands (a task's first argument) exist for the tests: echo, work, cat, pid, env, fail, and ways to misbehave.
// CHILD_STARTUP_MS and CHILD_WORK_MS simulate a costly start-up (a model, a dictionary) and per-task work.
using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

var startupMs = Milliseconds("CHILD_STARTUP_MS");
Thread.Sleep(startupMs);
if (Environment.GetEnvironmentVariable("DRAKKAR_EXECUTOR_PROTOCOL") is null)
{
    var stdin = Console.IsInputRedirected ? Console.In.ReadToEnd() : "";
    var (code, stdout, stderr) = Child.Run(args, stdin, new Dictionary<string, string>());
    Console.Out.Write(stdout);
    Console.Error.Write(stderr);
    return code;
}

if (args.Contains("--exit-at-start"))
{
    Console.Error.WriteLine("cannot load the model: /models/missing.bin not found");
    return 4;
}

var input = Console.OpenStandardInput();
var output = Console.OpenStandardOutput();
if (args.Contains("--bad-ready"))
{
    output.Write("hello, I am not a frame\n"u8);
}
else if (!args.Contains("--no-ready"))
{
    output.Write("{\"ready\": true}\n"u8);
}

output.Flush();
var reader = new LineReader(input);
while (reader.ReadLine() is { } line)
{
    var request = Request.Parse(line);
    var body = request.StdinLength is { } length ? reader.ReadExactly(length) : null;
    var stdinText = body is null ? request.Stdin ?? "" : Encoding.UTF8.GetString(body);
    Child.Answer(output, request, stdinText);
}

// A child that does not leave when asked: only the worker's kill after the exit grace ends it.
if (args.Contains("--ignore-eof"))
{
    Thread.Sleep(Timeout.Infinite);
}

// End-of-file on stdin is the worker asking this process to exit; the file lets a test see it left on its own.
if (Environment.GetEnvironmentVariable("CHILD_GOODBYE_FILE") is { Length: > 0 } goodbye)
{
    File.WriteAllText(goodbye, $"{Environment.ProcessId}\n");
}

return 0;

static int Milliseconds(string variable) =>
    int.TryParse(Environment.GetEnvironmentVariable(variable), CultureInfo.InvariantCulture, out var ms) ? ms : 0;

internal static class Child
{
    private static readonly List<byte[]> Held = [];

    /// <summary>The commands both modes share.</summary>
    public static (int Code, string Stdout, string Stderr) Run(string[] args, string stdin, Dictionary<string, string> env)
    {
        var command = args.Length > 0 ? args[0] : "echo";
        var rest = args.Skip(1);
        switch (command)
        {
            case "work":
                Thread.Sleep(int.TryParse(Environment.GetEnvironmentVariable("CHILD_WORK_MS"), CultureInfo.InvariantCulture, out var ms) ? ms : 1);
                return (0, string.Join(' ', rest) + "\n", "");
            case "cat":
                return (0, stdin, "");
            case "crash-once":
                // Dies (as a crash would) unless its marker file exists, which it creates first: a retry succeeds.
                if (!File.Exists(args[1]))
                {
                    File.WriteAllText(args[1], "crashed\n");
                    Environment.Exit(3);
                }

                return (0, string.Join(' ', args.Skip(2)) + "\n", "");
            case "pid":
                return (0, Environment.ProcessId.ToString(CultureInfo.InvariantCulture), "");
            case "env":
                var name = args[1];
                return (0, env.TryGetValue(name, out var value) ? value : Environment.GetEnvironmentVariable(name) ?? "", "");
            case "fail":
                return (int.Parse(args[1], CultureInfo.InvariantCulture), "", $"failing with {args[1]}\n");
            case "rss":
                var block = new byte[int.Parse(args[1], CultureInfo.InvariantCulture) * 1024 * 1024];
                for (var i = 0; i < block.Length; i += 4096) block[i] = 1;
                Held.Add(block);
                return (0, "held", "");
            default:
                return (0, string.Join(' ', rest) + "\n" + stdin, "");
        }
    }

    /// <summary>Writes the response to one request (or, for the misbehaving commands, something else).</summary>
    public static void Answer(Stream output, Request request, string stdin)
    {
        var command = request.Args.Count > 0 ? request.Args[0] : "echo";
        switch (command)
        {
            case "crash":
                Console.Error.WriteLine("segfault-like crash while handling " + request.Id);
                Environment.Exit(3);
                return;
            case "answer-then-exit":
                WriteLine(output, request.Id, 0, Environment.ProcessId.ToString(CultureInfo.InvariantCulture), "");
                Environment.Exit(5);
                return;
            case "exit-quietly":
                Environment.Exit(0);
                return;
            case "hang":
                Thread.Sleep(Timeout.Infinite);
                return;
            case "bad-frame":
                output.Write("this is not a frame\n"u8);
                output.Flush();
                return;
            case "stdin-framing":
                WriteLine(output, request.Id, 0, request.StdinLength is null ? "json-line" : "length-prefixed", "");
                return;
            case "wrong-id":
                WriteLine(output, "someone-else", 0, "", "");
                return;
            case "log":
                Console.Error.WriteLine(request.Args[1]);
                WriteLine(output, request.Id, 0, "", "task stderr\n");
                return;
            case "flood":
                Flood(output, request.Id, long.Parse(request.Args[1], CultureInfo.InvariantCulture) * 1024 * 1024);
                return;
            case "flood-line":
                WriteLine(output, request.Id, 0, new string('x', int.Parse(request.Args[1], CultureInfo.InvariantCulture) * 1024 * 1024), "");
                return;
        }

        var (code, stdout, stderr) = Run([.. request.Args], stdin, request.Env);
        WriteLine(output, request.Id, code, stdout, stderr);
    }

    private static void WriteLine(Stream output, string id, int code, string stdout, string stderr)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteNumber("exit_code", code);
            json.WriteString("stdout", stdout);
            json.WriteString("stderr", stderr);
            json.WriteEndObject();
        }

        buffer.Write("\n"u8);
        output.Write(buffer.WrittenSpan);
        output.Flush();
    }

    /// <summary>A length-prefixed answer with <paramref name="bytes"/> of stdout, written in chunks.</summary>
    private static void Flood(Stream output, string id, long bytes)
    {
        output.Write(Encoding.UTF8.GetBytes($"{{\"id\":{JsonSerializerString(id)},\"exit_code\":0,\"stdout_length\":{bytes},\"stderr_length\":5}}\n"));
        var chunk = new byte[1 << 20];
        Array.Fill(chunk, (byte)'x');
        for (var left = bytes; left > 0; left -= chunk.Length)
        {
            output.Write(chunk, 0, (int)Math.Min(chunk.Length, left));
        }

        output.Write("done\n"u8);
        output.Flush();
    }

    private static string JsonSerializerString(string text)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStringValue(text);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}

internal sealed record Request(string Id, List<string> Args, Dictionary<string, string> Env, string? Stdin, int? StdinLength)
{
    public static Request Parse(byte[] line)
    {
        var reader = new Utf8JsonReader(line);
        string id = "";
        var args = new List<string>();
        var env = new Dictionary<string, string>();
        string? stdin = null;
        int? stdinLength = null;
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString();
            reader.Read();
            switch (name)
            {
                case "id":
                    id = reader.GetString()!;
                    break;
                case "args":
                    while (reader.Read() && reader.TokenType == JsonTokenType.String) args.Add(reader.GetString()!);
                    break;
                case "env":
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var key = reader.GetString()!;
                        reader.Read();
                        env[key] = reader.GetString()!;
                    }
                    break;
                case "stdin":
                    stdin = reader.TokenType == JsonTokenType.Null ? null : reader.GetString();
                    break;
                case "stdin_length":
                    stdinLength = reader.GetInt32();
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        return new Request(id, args, env, stdin, stdinLength);
    }
}

/// <summary>Buffered reads of newline-terminated lines and exact byte counts from stdin.</summary>
internal sealed class LineReader(Stream input)
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;
    private readonly MemoryStream _line = new();

    public byte[]? ReadLine()
    {
        _line.SetLength(0);
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (newline >= 0)
            {
                _line.Write(_buffer, _start, newline - _start);
                _start = newline + 1;
                return _line.ToArray();
            }

            _line.Write(_buffer, _start, _end - _start);
            if (!Fill()) return null;
        }
    }

    public byte[] ReadExactly(int length)
    {
        var bytes = new byte[length];
        var copied = 0;
        while (copied < length)
        {
            if (_start == _end && !Fill()) throw new EndOfStreamException("stdin ended inside a body");
            var take = Math.Min(length - copied, _end - _start);
            Array.Copy(_buffer, _start, bytes, copied, take);
            copied += take;
            _start += take;
        }

        return bytes;
    }

    private bool Fill()
    {
        _start = 0;
        _end = input.Read(_buffer, 0, _buffer.Length);
        return _end > 0;
    }
}
