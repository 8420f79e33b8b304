using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Drakkar.Execution.Posix;
using Microsoft.Extensions.Logging;

namespace Drakkar.Execution.Persistent;

/// <summary>
/// One long-lived executor process: started in its own process group, checked for its ready line, then fed one
/// request at a time. Whoever holds it is its only user; a child that misbehaves is killed and never reused.
/// </summary>
internal sealed class PersistentChild
{
    private const int MaxReadyLineBytes = 64 * 1024;
    private const int MaxStderrLineBytes = 8 * 1024;
    private const int LastStderrChars = 300;

    private readonly ChildProcess _process;
    private readonly ILogger _logger;
    private readonly FrameReader _stdout;
    private readonly Task _exited;
    private readonly Task _stderrLogged;
    private readonly ArrayBufferWriter<byte> _request = new();
    private readonly Utf8JsonWriter _json;
    private volatile string _lastStderrLine = "";
    private bool _reaped;

    private PersistentChild(string binary, ChildProcess process, ILogger logger)
    {
        Binary = binary;
        _process = process;
        _logger = logger;
        _stdout = new FrameReader(process.Stdout);
        _json = ExecutorFrames.CreateWriter(_request);
        _exited = process.WaitForExitAsync();
        _stderrLogged = LogStderrAsync();
    }

    public string Binary { get; }

    public int Pid => _process.Pid;

    /// <summary>Tasks this process has answered.</summary>
    public int TasksAnswered { get; private set; }

    /// <summary>False once the process was killed or exited: it must be forgotten, not reused.</summary>
    public bool IsAlive => !_reaped;

    /// <summary>True once the process has exited, even if nobody has noticed through its pipes yet.</summary>
    public bool HasExited => _exited.IsCompleted;

    /// <summary>The exit code observed when the process was reaped (128 + signal when killed).</summary>
    public int? ExitCode { get; private set; }

    /// <summary>How the process is named in errors and logs.</summary>
    public string Name => $"executor '{Binary}' (pid {Pid})";

    /// <summary>Starts the process and waits for its ready line.</summary>
    /// <exception cref="ProcessSpawnException">It could not start, exited, or did not say it was ready in time.</exception>
    public static async Task<PersistentChild> StartAsync(
        string binary,
        IReadOnlyList<string> args,
        IReadOnlyDictionary<string, string> environment,
        TimeSpan readyTimeout,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        var child = new PersistentChild(binary, ChildProcess.Start(binary, args, environment, pipeStdin: true), logger);
        using var deadline = new CancellationTokenSource(readyTimeout);
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        string? problem = null;
        var kill = abort.Token.Register(static state => ((ChildProcess)state!).KillGroup(), child._process);
        try
        {
            var line = await child._stdout.ReadLineAsync(MaxReadyLineBytes, abort.Token).ConfigureAwait(false);
            if (line is null)
            {
                problem = "exited before printing its ready line";
            }
            else if (!ExecutorFrames.IsReady(line.Value.Span))
            {
                problem = $"wrote '{ExecutorFrames.Preview(line.Value.Span)}' instead of its ready line {{\"ready\": true}}";
            }
        }
        catch (FrameException e)
        {
            problem = e.Message;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            problem = "exited before printing its ready line";
        }
        finally
        {
            await kill.DisposeAsync().ConfigureAwait(false);
        }

        if (problem is null && !abort.IsCancellationRequested)
        {
            return child;
        }

        await child.KillAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (deadline.IsCancellationRequested)
        {
            problem = $"did not print its ready line within {readyTimeout.TotalSeconds:0.###}s (executor.ready_timeout_seconds)";
        }
        else if (problem!.StartsWith("exited", StringComparison.Ordinal))
        {
            problem += $" (exit code {child.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "unknown"})";
        }

        var stderr = child._lastStderrLine;
        throw new ProcessSpawnException(
            $"{child.Name} {problem}" + (stderr.Length > 0 ? $"; its last stderr line: '{stderr}'" : "") +
            "; see docs/executor-protocol.md", child.Pid, stderr);
    }

    /// <summary>
    /// Sends <paramref name="task"/> and reads its response. A crash, a broken frame or a timeout kills the process
    /// (<see cref="IsAlive"/> turns false) and becomes the run's status; cancellation kills it and throws.
    /// </summary>
    public async Task<ProcessRun> RunAsync(ExecutorTask task, TimeSpan timeout, int maxOutputBytes, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var deadline = new CancellationTokenSource(timeout);
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        string? violation = null;
        var ended = false;
        ResponseFrame? response = null;
        CapturedOutput stdout = default, stderr = default;
        // A read that waits on a hung child ends when its group is killed, whether or not the pipe honours the token.
        var kill = abort.Token.Register(static state => ((ChildProcess)state!).KillGroup(), _process);
        try
        {
            try
            {
                _request.ResetWrittenCount();
                ExecutorFrames.WriteRequest(_request, _json, task);
                await _process.Stdin!.WriteAsync(_request.WrittenMemory, abort.Token).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // The child is gone (EPIPE); reading its stdout finds the end and says so.
            }

            var line = await _stdout.ReadLineAsync(MaxFrameBytes(maxOutputBytes), abort.Token).ConfigureAwait(false);
            if (line is null)
            {
                ended = true;
                await _exited.WaitAsync(abort.Token).ConfigureAwait(false);
            }
            else
            {
                var frame = ExecutorFrames.ParseResponse(line.Value.Span);
                if (frame.Id != task.TaskId)
                {
                    throw new FrameException($"answered task '{frame.Id}' while task '{task.TaskId}' was running (an unknown task id)");
                }

                stdout = frame.StdoutLength is { } stdoutLength
                    ? await _stdout.ReadBodyAsync(stdoutLength, maxOutputBytes, abort.Token).ConfigureAwait(false)
                    : Inline(frame.Stdout, maxOutputBytes);
                stderr = frame.StderrLength is { } stderrLength
                    ? await _stdout.ReadBodyAsync(stderrLength, maxOutputBytes, abort.Token).ConfigureAwait(false)
                    : Inline(frame.Stderr, maxOutputBytes);
                response = frame;
            }
        }
        catch (FrameException e)
        {
            violation = e.Message;
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            // Timed out or cancelled: the registration has killed the group.
        }
        catch (IOException)
        {
            ended = true;
        }
        finally
        {
            await kill.DisposeAsync().ConfigureAwait(false);
        }

        var duration = Stopwatch.GetElapsedTime(started);
        if (abort.IsCancellationRequested || violation is not null || ended)
        {
            await KillAsync().ConfigureAwait(false);
        }

        cancellationToken.ThrowIfCancellationRequested();
        // Checked before the frame: the kill that ends a timed-out task can also cut the frame it was writing.
        if (deadline.IsCancellationRequested && response is null)
        {
            return new ProcessRun(ProcessRunStatus.TimedOut, Pid, null, "", "", duration,
                $"timed out after {timeout.TotalSeconds:0.###}s (executor.task_timeout_seconds); {Name} was killed and will be restarted");
        }

        if (violation is not null)
        {
            return new ProcessRun(ProcessRunStatus.ProtocolError, Pid, null, "", "", duration,
                $"{Name} {violation}; it was killed and will be restarted");
        }

        if (response is not null)
        {
            TasksAnswered++;
            return new ProcessRun(ProcessRunStatus.Exited, Pid, response.ExitCode, stdout.Text, stderr.Text, duration)
            {
                StdoutTruncated = stdout.Truncated,
                StderrTruncated = stderr.Truncated,
            };
        }

        var lastWords = _lastStderrLine.Length > 0 ? $"; its last stderr line: '{_lastStderrLine}'" : "";
        return ExitCode is null or 0
            ? new ProcessRun(ProcessRunStatus.ProtocolError, Pid, null, "", _lastStderrLine, duration,
                $"{Name} exited (code {ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "unknown"}) without answering task '{task.TaskId}'{lastWords}")
            : new ProcessRun(ProcessRunStatus.Exited, Pid, ExitCode, "", _lastStderrLine, duration,
                $"{Name} exited with code {ExitCode} while running task '{task.TaskId}'; it will be restarted{lastWords}");
    }

    /// <summary>Resident memory of the process (not its descendants) in MiB; null when it cannot be read.</summary>
    public long? ResidentMegabytes()
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    var kilobytes = long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
                    return kilobytes / 1024;
                }
            }
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            // Gone or unreadable: no measurement.
        }

        return null;
    }

    /// <summary>
    /// Ends the process politely: its stdin is closed (the protocol's "exit now"), and after <paramref name="grace"/>
    /// whatever is left of its group is killed. Returns once it is reaped.
    /// </summary>
    public async Task EndAsync(TimeSpan grace, CancellationToken hurry = default)
    {
        if (_reaped)
        {
            return;
        }

        try
        {
            await _process.Stdin!.DisposeAsync().ConfigureAwait(false);
        }
        catch (IOException)
        {
            // Already gone.
        }

        try
        {
            await _exited.WaitAsync(grace, hurry).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            // It did not leave in time, or there is no time left (the worker's stop ran out of its bound): the kill
            // below ends it, and the log says so (a child that ignores end-of-file loses whatever it meant to save).
            ExecutorLog.ProcessKilledAtEnd(_logger, Binary, Pid, e is TimeoutException
                ? $"within {grace.TotalSeconds:0.###}s"
                : "before the worker's stop ran out of drain_timeout_seconds");
        }

        await KillAsync().ConfigureAwait(false);
    }

    /// <summary>SIGKILLs the process group (a no-op once the process exited), reaps the process and closes its pipes.</summary>
    public async Task KillAsync()
    {
        if (_reaped)
        {
            return;
        }

        // Like spawn mode: the whole group goes, so nothing the child started outlives it. The pid is not reaped
        // yet, so it cannot name another group.
        _process.KillGroup();
        await _exited.ConfigureAwait(false);
        ExitCode = _process.Reap();
        _reaped = true;
        try
        {
            // Its last stderr lines explain a crash; a descendant that left the group may hold the pipe open, so
            // waiting for them is bounded.
            await _stderrLogged.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Logged as far as it got.
        }

        _stdout.Dispose();
        await DisposeQuietly(_process.Stdin).ConfigureAwait(false);
        await DisposeQuietly(_process.Stdout).ConfigureAwait(false);
        await DisposeQuietly(_process.Stderr).ConfigureAwait(false);
    }

    /// <summary>The longest response line accepted: both streams at their limit, plus room for the envelope.</summary>
    internal static int MaxFrameBytes(int maxOutputBytes) => (int)Math.Min(2L * maxOutputBytes + 64 * 1024, 1 << 30);

    private static CapturedOutput Inline(string? text, int maxBytes)
    {
        if (text is null || (long)text.Length * 3 <= maxBytes || Encoding.UTF8.GetByteCount(text) <= maxBytes)
        {
            return new CapturedOutput(text ?? "", Truncated: false, Complete: true);
        }

        var bytes = Encoding.UTF8.GetBytes(text);
        return new CapturedOutput(OutputCapture.Decode(bytes.AsSpan(0, maxBytes), truncated: true), Truncated: true, Complete: true);
    }

    private static async ValueTask DisposeQuietly(Stream? stream)
    {
        if (stream is null)
        {
            return;
        }

        try
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (IOException)
        {
            // A pipe whose other end is gone may report it again on close.
        }
    }

    /// <summary>
    /// The process's own stderr is not any one task's (per-task stderr travels in responses): each line is logged
    /// with the process's name, long lines in pieces.
    /// </summary>
    private async Task LogStderrAsync()
    {
        await Task.Yield();
        var buffer = ArrayPool<byte>.Shared.Rent(MaxStderrLineBytes);
        var length = 0;
        try
        {
            while (true)
            {
                var read = await _process.Stderr.ReadAsync(buffer.AsMemory(length, MaxStderrLineBytes - length)).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                length += read;
                var start = 0;
                int newline;
                while ((newline = buffer.AsSpan(start, length - start).IndexOf((byte)'\n')) >= 0)
                {
                    Log(buffer.AsSpan(start, newline));
                    start += newline + 1;
                }

                if (start == 0 && length == MaxStderrLineBytes)
                {
                    Log(buffer.AsSpan(0, length));
                    start = length;
                }

                buffer.AsSpan(start, length - start).CopyTo(buffer);
                length -= start;
            }

            if (length > 0)
            {
                Log(buffer.AsSpan(0, length));
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The pipe was closed under the reader after a kill.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Log(ReadOnlySpan<byte> bytes)
    {
        var line = Encoding.UTF8.GetString(bytes).TrimEnd('\r');
        _lastStderrLine = line.Length > LastStderrChars ? line[..LastStderrChars] + "…" : line;
        ExecutorLog.ChildStderr(_logger, Binary, Pid, line);
    }
}
