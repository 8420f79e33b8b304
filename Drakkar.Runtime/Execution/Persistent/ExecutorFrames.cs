using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Drakkar.Execution.Persistent;

/// <summary>A response line, before any length-prefixed bodies that follow it are read.</summary>
/// <param name="Id">The task id the child says it answers.</param>
/// <param name="ExitCode">The task's exit code as the child reports it.</param>
/// <param name="Stdout">The inline stdout (null when absent or sent as a body).</param>
/// <param name="Stderr">The inline stderr (null when absent or sent as a body).</param>
/// <param name="StdoutLength">Bytes of stdout that follow the line, when the child sends a body.</param>
/// <param name="StderrLength">Bytes of stderr that follow the stdout body, when the child sends one.</param>
internal sealed record ResponseFrame(string Id, int ExitCode, string? Stdout, string? Stderr, long? StdoutLength, long? StderrLength);

/// <summary>
/// The executor protocol's frames (docs/executor-protocol.md): the ready line, requests, responses. JSON is read
/// and written with <see cref="Utf8JsonReader"/>/<see cref="Utf8JsonWriter"/>, so nothing depends on reflection.
/// </summary>
internal static class ExecutorFrames
{
    /// <summary>The variable set in every persistent child's environment, so one binary can serve both modes.</summary>
    public const string ProtocolVariable = "DRAKKAR_EXECUTOR_PROTOCOL";

    public const string ProtocolVersion = "1";

    // Non-ASCII text travels as UTF-8 rather than \u escapes; quotes and control characters are still escaped,
    // which is all a JSON line needs.
    private static readonly JsonWriterOptions WriterOptions = Serialization.JsonOutput.Compact with { SkipValidation = true };

    public static Utf8JsonWriter CreateWriter(IBufferWriter<byte> output) => new(output, WriterOptions);

    /// <summary>Appends one request: the JSON line, then the stdin body when the task asked for length-prefixed framing.</summary>
    public static void WriteRequest(ArrayBufferWriter<byte> output, Utf8JsonWriter json, ExecutorTask task)
    {
        json.Reset(output);
        json.WriteStartObject();
        json.WriteString("id"u8, task.TaskId);
        json.WriteStartArray("args"u8);
        foreach (var arg in task.Args)
        {
            json.WriteStringValue(arg);
        }

        json.WriteEndArray();
        json.WriteStartObject("env"u8);
        var env = task.EnvOrEmpty;
        if (env.Count > 0)
        {
            foreach (var (name, value) in env)
            {
                json.WriteString(name, value);
            }
        }

        json.WriteEndObject();
        byte[]? body = null;
        if (task.Framing == TaskFraming.LengthPrefixed)
        {
            body = task.Stdin is null ? [] : Encoding.UTF8.GetBytes(task.Stdin);
            json.WriteNumber("stdin_length"u8, body.Length);
        }
        else
        {
            json.WriteString("stdin"u8, task.Stdin);
        }

        json.WriteEndObject();
        json.Flush();
        output.Write("\n"u8);
        if (body is not null)
        {
            output.Write(body);
        }
    }

    /// <summary>True when <paramref name="line"/> is a JSON object with <c>"ready": true</c>.</summary>
    public static bool IsReady(ReadOnlySpan<byte> line)
    {
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isReady = reader.ValueTextEquals("ready"u8);
                reader.Read();
                if (isReady)
                {
                    return reader.TokenType == JsonTokenType.True;
                }

                reader.Skip();
            }

            return false;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <exception cref="FrameException">The line is not a response frame.</exception>
    public static ResponseFrame ParseResponse(ReadOnlySpan<byte> line)
    {
        string? id = null;
        int? exitCode = null;
        string? stdout = null, stderr = null;
        long? stdoutLength = null, stderrLength = null;
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw NotAResponse(line, "it is not a JSON object");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("id"u8))
                {
                    reader.Read();
                    id = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw NotAResponse(line, "\"id\" is not a string");
                }
                else if (reader.ValueTextEquals("exit_code"u8))
                {
                    reader.Read();
                    exitCode = reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var code)
                        ? code
                        : throw NotAResponse(line, "\"exit_code\" is not an integer");
                }
                else if (reader.ValueTextEquals("stdout"u8))
                {
                    stdout = ReadText(ref reader, line, "stdout");
                }
                else if (reader.ValueTextEquals("stderr"u8))
                {
                    stderr = ReadText(ref reader, line, "stderr");
                }
                else if (reader.ValueTextEquals("stdout_length"u8))
                {
                    stdoutLength = ReadLength(ref reader, line, "stdout_length");
                }
                else if (reader.ValueTextEquals("stderr_length"u8))
                {
                    stderrLength = ReadLength(ref reader, line, "stderr_length");
                }
                else
                {
                    // Unknown fields are allowed, so a child can carry more than this version of the protocol reads.
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw NotAResponse(line, "it is not valid JSON");
        }

        if (id is null)
        {
            throw NotAResponse(line, "\"id\" is missing");
        }

        if (exitCode is null)
        {
            throw NotAResponse(line, "\"exit_code\" is missing");
        }

        return new ResponseFrame(id, exitCode.Value, stdout, stderr, stdoutLength, stderrLength);
    }

    /// <summary>The start of a frame as printable text, for error messages.</summary>
    public static string Preview(ReadOnlySpan<byte> line)
    {
        const int Shown = 120;
        var text = Encoding.UTF8.GetString(line[..Math.Min(line.Length, Shown)]);
        var builder = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            builder.Append(char.IsControl(c) ? '·' : c);
        }

        return line.Length > Shown ? builder.Append('…').ToString() : builder.ToString();
    }

    private static string? ReadText(ref Utf8JsonReader reader, ReadOnlySpan<byte> line, string name)
    {
        reader.Read();
        return reader.TokenType switch
        {
            JsonTokenType.String => reader.GetString(),
            JsonTokenType.Null => null,
            _ => throw NotAResponse(line, $"\"{name}\" is not a string"),
        };
    }

    private static long ReadLength(ref Utf8JsonReader reader, ReadOnlySpan<byte> line, string name)
    {
        reader.Read();
        return reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var length) && length >= 0
            ? length
            : throw NotAResponse(line, $"\"{name}\" is not a byte count");
    }

    private static FrameException NotAResponse(ReadOnlySpan<byte> line, string why) =>
        new($"wrote an invalid response frame ({why}): '{Preview(line)}'");
}
