using System.Buffers;
using System.Collections.Concurrent;
using System.Text.Json;

namespace Drakkar.Sinks.Filesystem;

/// <summary>
/// Appends each payload as one compact JSON line (JSONL) to its file under <c>base_path</c> (SPEC S13). Paths are
/// contained after following symlinks; the parent directory must exist (the file is created). Lines for one file
/// are written with one append under a per-file lock, so concurrent batches never interleave within a line. Not
/// idempotent: a retry appends again.
/// </summary>
public sealed class FileSink : ISink
{
    private readonly string _configuredBase;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _fileLocks = new(StringComparer.Ordinal);
    private string? _realBase;

    internal FileSink(string name, FileSinkConfig config)
    {
        if (string.IsNullOrWhiteSpace(config.BasePath))
            throw new SinkConfigurationException($"sinks.filesystem.{name}.base_path is required: every file this sink writes lives under it.");
        Name = name;
        _configuredBase = config.BasePath;
    }

    public string Kind => "filesystem";
    public string Name { get; }
    public bool IsIdempotent => false;
    public bool IsConnected => _realBase is not null;

    public ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        try
        {
            _realBase = ContainedPath.RealDirectory(_configuredBase);
        }
        catch (DirectoryNotFoundException)
        {
            throw new SinkDeliveryException($"sinks.filesystem.{Name}.base_path '{_configuredBase}' does not exist or is not a directory; create it first.");
        }
        return ValueTask.CompletedTask;
    }

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var realBase = _realBase ?? throw new SinkTransientException($"filesystem sink '{Name}' is not connected");
        // Resolve every path first: a batch with one refused path writes nothing.
        var files = new Dictionary<string, ArrayBufferWriter<byte>>(StringComparer.Ordinal);
        foreach (var payload in batch.Payloads)
        {
            var path = ContainedPath.Resolve(realBase, ((FilePayload)payload).Path, _configuredBase);
            if (!files.TryGetValue(path, out var lines)) files[path] = lines = new ArrayBufferWriter<byte>(256);
            using (var writer = new Utf8JsonWriter(lines)) payload.Data.WriteJson(writer);
            lines.GetSpan(1)[0] = (byte)'\n';
            lines.Advance(1);
        }
        foreach (var (path, lines) in files)
        {
            var fileLock = _fileLocks.GetOrAdd(path, static _ => new SemaphoreSlim(1, 1));
            await fileLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0, useAsync: true);
                // Not cancellable once started: a write cut short would leave half a line for the next one to follow.
                await stream.WriteAsync(lines.WrittenMemory, CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                fileLock.Release();
            }
        }
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        _realBase = null;
        return ValueTask.CompletedTask;
    }
}
