using System.Buffers;
using System.Text;

namespace Drakkar.Execution;

/// <summary>What was read from one of a child's output streams.</summary>
/// <param name="Text">The captured bytes as UTF-8; invalid sequences are replaced with U+FFFD.</param>
/// <param name="Truncated">The stream produced more than the limit; the excess was read and discarded.</param>
/// <param name="Complete">End-of-file was reached (false when reading was abandoned).</param>
internal readonly record struct CapturedOutput(string Text, bool Truncated, bool Complete);

/// <summary>Reads a child's output stream to its end, keeping at most a fixed number of bytes.</summary>
internal static class OutputCapture
{
    private const int ReadSize = 64 * 1024;

    /// <summary>
    /// Drains <paramref name="stream"/> until end-of-file or cancellation, then disposes it. Bytes past
    /// <paramref name="maxBytes"/> are still read (so a chatty child never blocks on a full pipe) but dropped.
    /// Cancellation is not an error: what was captured so far is returned with <c>Complete = false</c>.
    /// </summary>
    public static async Task<CapturedOutput> ReadAsync(Stream stream, int maxBytes, CancellationToken cancellationToken)
    {
        maxBytes = Math.Max(0, maxBytes);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(ReadSize, Math.Max(maxBytes, 1)));
        byte[]? discard = null;
        var length = 0;
        var truncated = false;
        var complete = false;
        try
        {
            while (true)
            {
                if (length == buffer.Length && length < maxBytes)
                {
                    var grown = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, maxBytes));
                    buffer.AsSpan(0, length).CopyTo(grown);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = grown;
                }

                var room = Math.Min(buffer.Length, maxBytes) - length;
                int read;
                if (room > 0)
                {
                    read = await stream.ReadAsync(buffer.AsMemory(length, room), cancellationToken).ConfigureAwait(false);
                    length += read;
                }
                else
                {
                    discard ??= ArrayPool<byte>.Shared.Rent(ReadSize);
                    read = await stream.ReadAsync(discard, cancellationToken).ConfigureAwait(false);
                    truncated |= read > 0;
                }

                if (read == 0)
                {
                    complete = true;
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Abandoned (timeout or cancellation): keep what arrived.
        }
        catch (IOException)
        {
            // The pipe broke; what arrived is all there is.
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }

        try
        {
            return new CapturedOutput(Decode(buffer.AsSpan(0, length), truncated), truncated, complete);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (discard is not null)
            {
                ArrayPool<byte>.Shared.Return(discard);
            }
        }
    }

    /// <summary>Captured bytes as text; after a truncation, a character cut in half at the end is dropped.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes, bool truncated)
    {
        var kept = truncated ? TrimIncompleteSequence(bytes) : bytes;
        return kept.IsEmpty ? "" : Encoding.UTF8.GetString(kept);
    }

    /// <summary>
    /// Drops a multi-byte character cut in half by truncation, so the text does not end in a spurious U+FFFD.
    /// </summary>
    private static ReadOnlySpan<byte> TrimIncompleteSequence(ReadOnlySpan<byte> bytes)
    {
        // Walk back over at most three continuation bytes (10xxxxxx) to the sequence's lead byte.
        var index = bytes.Length - 1;
        var continuation = 0;
        while (index >= 0 && continuation < 3 && (bytes[index] & 0xC0) == 0x80)
        {
            index--;
            continuation++;
        }

        if (index < 0)
        {
            return bytes;
        }

        var lead = bytes[index];
        var expected = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        return expected > continuation + 1 ? bytes[..index] : bytes;
    }
}
