using System.Buffers;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Drakkar.Sinks.Filesystem;

/// <summary>
/// Appends each payload as one compact JSON line (JSONL) to its file under <c>base_path</c>. Files are
/// opened beneath base_path without following any symlink, must be regular files with a single link, and are
/// created when missing (their parent directory must exist); see <see cref="BeneathFile"/>. A batch's lines for one
/// file are appended with one <c>write(2)</c> on an <c>O_APPEND</c> descriptor, so batches from any number of
/// threads or processes never interleave within a line nor overwrite each other (on a local filesystem; see
/// docs/security.md for NFS). Not idempotent: a retry appends again.
/// </summary>
internal sealed class FileSink : ISink
{
    private readonly string _configuredBase;
    private readonly bool _componentWalk;
    private SafeFileHandle? _base;

    internal FileSink(string name, FileSinkConfig config, bool componentWalk = false)
    {
        if (string.IsNullOrWhiteSpace(config.BasePath))
            throw new SinkConfigurationException($"sinks.filesystem.{name}.base_path is required: every file this sink writes lives under it.");
        Name = name;
        _configuredBase = config.BasePath;
        _componentWalk = componentWalk;
    }

    public string Kind => "filesystem";
    public string Name { get; }
    public bool IsIdempotent => false;
    public bool IsConnected => _base is not null;

    public ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        var opened = BeneathFile.OpenBase(_configuredBase, $"sinks.filesystem.{Name}.base_path");
        Interlocked.Exchange(ref _base, opened)?.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var baseDirectory = _base ?? throw new SinkTransientException($"filesystem sink '{Name}' is not connected");
        // Every path is checked, and the files that exist opened, before anything is created or written: a batch with
        // one refused path writes nothing and leaves no new empty file behind.
        var files = new Dictionary<string, (SafeFileHandle? File, ArrayBufferWriter<byte> Lines, List<int> Payloads)>(StringComparer.Ordinal);
        List<string>? toCreate = null;
        // One JSON writer for the whole batch, pointed at each line's file buffer in turn.
        using var writer = new Utf8JsonWriter(Stream.Null, Serialization.JsonOutput.Compact);
        try
        {
            // base_path renamed or replaced while the worker runs (an output directory rotated): the files go to what the
            // configured path names now, not on into the directory the sink opened at start. Nothing there: an outage.
            if (!BeneathFile.StillAt(baseDirectory, _configuredBase))
            {
                var current = OpenConfiguredBase() ?? throw new DirectoryNotFoundException(
                    $"base_path '{_configuredBase}' no longer exists (removed or renamed while the worker runs); nothing can be written until it is back.");
                Interlocked.Exchange(ref _base, current)?.Dispose();
                baseDirectory = current;
            }
            for (var i = 0; i < batch.Count; i++)
            {
                var payload = batch.Payloads[i];
                var path = ((FilePayload)payload).Path;
                if (!files.TryGetValue(path, out var file))
                {
                    files[path] = file = (BeneathFile.OpenExistingForAppend(baseDirectory, path, _configuredBase, _componentWalk), new ArrayBufferWriter<byte>(256), []);
                    if (file.File is null) (toCreate ??= []).Add(path);
                }
                var lineStart = file.Lines.WrittenCount;
                writer.Reset(file.Lines);
                try
                {
                    payload.Data.WriteJson(writer);
                    writer.Flush();
                }
                catch (Exception e) when (PayloadData.IsUnwritable(e))
                {
                    // This payload's data has no JSON form: it fails alone, and whatever of it reached the buffer is cut.
                    batch.Fail(i, SinkDeliveryException.Unwritable(batch, i, "JSON", e));
                    if (file.Lines.WrittenCount > lineStart) files[path] = file = file with { Lines = Truncated(file.Lines, lineStart) };
                    continue;
                }
                file.Lines.GetSpan(1)[0] = (byte)'\n';
                file.Lines.Advance(1);
                file.Payloads.Add(i);
            }
            foreach (var path in toCreate ?? [])
            {
                // Not when every payload for it failed alone (no JSON form): nothing would be written to it.
                if (files[path].Payloads.Count > 0)
                    files[path] = files[path] with { File = BeneathFile.OpenForAppend(baseDirectory, path, _configuredBase, _componentWalk) };
            }
            // Not cancellable once started: a write cut short would leave half a line for the next one to follow.
            var written = false;
            foreach (var (path, (file, lines, payloads)) in files)
            {
                if (file is null) continue;
                try
                {
                    BeneathFile.AppendAll(file, lines.WrittenSpan, path);
                    written = true;
                }
                catch (Exception e) when (written && e is IOException or UnauthorizedAccessException)
                {
                    // Other files of the batch are written already: only this file's payloads failed (SinkBatch.Fail),
                    // so a retry does not append the others twice.
                    foreach (var index in payloads) batch.Fail(index, e);
                }
            }
        }
        catch (DirectoryNotFoundException)
        {
            // base_path was removed while the worker ran (BeneathFile: its handle has no link left). The batch is held as
            // an outage; the directory is opened again by its path for the next attempt, so recreating it ends the outage.
            if (OpenConfiguredBase() is { } reopened) Interlocked.Exchange(ref _base, reopened)?.Dispose();
            throw;
        }
        finally
        {
            foreach (var (file, _, _) in files.Values) file?.Dispose();
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>A handle of the directory the configured base_path names now, or null when nothing is there.</summary>
    private SafeFileHandle? OpenConfiguredBase()
    {
        try
        {
            return BeneathFile.OpenBase(_configuredBase, $"sinks.filesystem.{Name}.base_path");
        }
        catch (SinkDeliveryException)
        {
            return null;
        }
    }

    private static ArrayBufferWriter<byte> Truncated(ArrayBufferWriter<byte> lines, int length)
    {
        var kept = new ArrayBufferWriter<byte>(Math.Max(length, 256));
        kept.Write(lines.WrittenSpan[..length]);
        return kept;
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _base, null)?.Dispose();
        return ValueTask.CompletedTask;
    }
}
