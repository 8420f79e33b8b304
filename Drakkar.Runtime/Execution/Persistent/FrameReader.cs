using System.Buffers;

namespace Drakkar.Execution.Persistent;

/// <summary>
/// Reads a persistent child's stdout as frames: newline-terminated lines and raw byte runs of announced length,
/// each with a bound, so a child that writes gigabytes costs time, never memory.
/// </summary>
internal sealed class FrameReader(Stream stream) : IDisposable
{
    private const int InitialSize = 16 * 1024;

    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(InitialSize);
    private int _start;
    private int _end;

    /// <summary>
    /// The next line without its newline, or null when the stream ended between frames. The memory is valid until
    /// the next read.
    /// </summary>
    /// <exception cref="FrameException">The line is longer than <paramref name="maxBytes"/>, or the stream ended inside it.</exception>
    public async ValueTask<ReadOnlyMemory<byte>?> ReadLineAsync(int maxBytes, CancellationToken cancellationToken)
    {
        var scanned = 0;
        while (true)
        {
            var newline = _buffer.AsSpan(_start + scanned, _end - _start - scanned).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var length = scanned + newline;
                if (length > maxBytes)
                {
                    throw TooLong(maxBytes);
                }

                var line = _buffer.AsMemory(_start, length);
                _start += length + 1;
                return line;
            }

            scanned = _end - _start;
            if (scanned > maxBytes)
            {
                // Stop here rather than read the rest: the child is replaced, so its stream need not stay in step.
                throw TooLong(maxBytes);
            }

            if (!await FillAsync(cancellationToken).ConfigureAwait(false))
            {
                return scanned == 0 ? null : throw new FrameException($"closed its stdout inside a frame ({scanned} bytes without a newline)");
            }
        }
    }

    /// <summary>
    /// Reads exactly <paramref name="length"/> bytes, keeping the first <paramref name="keep"/> as text and
    /// discarding the rest (so the stream stays in step with the child's frames).
    /// </summary>
    public async ValueTask<CapturedOutput> ReadBodyAsync(long length, int keep, CancellationToken cancellationToken)
    {
        var keptLength = (int)Math.Min(length, keep);
        var kept = ArrayPool<byte>.Shared.Rent(Math.Max(keptLength, 1));
        try
        {
            var copied = 0;
            var remaining = length;
            while (remaining > 0)
            {
                if (_start == _end)
                {
                    _start = _end = 0;
                    var read = await stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        throw new FrameException($"closed its stdout {remaining} bytes before the end of a {length}-byte body");
                    }

                    _end = read;
                }

                var take = (int)Math.Min(remaining, _end - _start);
                var toKeep = Math.Min(take, keptLength - copied);
                _buffer.AsSpan(_start, toKeep).CopyTo(kept.AsSpan(copied));
                copied += toKeep;
                _start += take;
                remaining -= take;
            }

            var truncated = length > keep;
            return new CapturedOutput(OutputCapture.Decode(kept.AsSpan(0, copied), truncated), truncated, Complete: true);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(kept);
        }
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    private static FrameException TooLong(int maxBytes) =>
        new($"wrote a frame longer than {maxBytes} bytes (2 × executor.max_output_bytes + 64 KiB); " +
            "answer with stdout_length/stderr_length bodies for large output");

    /// <summary>Reads more bytes after the buffered ones, compacting or growing the buffer; false at end-of-stream.</summary>
    private async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
    {
        if (_start > 0)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            var grown = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
            _buffer.AsSpan(0, _end).CopyTo(grown);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = grown;
        }

        var read = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        _end += read;
        return read > 0;
    }
}

/// <summary>A persistent child broke the frame protocol; the message says how, for a person to read.</summary>
internal sealed class FrameException(string message) : Exception(message);
