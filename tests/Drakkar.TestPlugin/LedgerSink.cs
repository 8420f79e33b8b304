using System.Text;
using Drakkar;
using Drakkar.Sinks;

namespace Drakkar.TestPlugin;

/// <summary>
/// A plugin sink kind, <c>ledger</c>: appends <c>{prefix}{json}</c> lines to the file its instance settings name.
/// Configured under <c>sinks.custom.ledger.{instance}</c> with <c>path</c> (required) and <c>prefix</c>.
/// </summary>
public sealed class LedgerSink : ISink
{
    private readonly string _path;
    private readonly string _prefix;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public LedgerSink(CustomSinkContext context)
    {
        Name = context.Name;
        if (!context.Settings.TryGetValue("path", out var path) || string.IsNullOrWhiteSpace(path))
            throw new SinkConfigurationException($"sinks.custom.{context.Kind}.{context.Name}.path is required: the ledger file to append to.");
        _path = path;
        _prefix = context.Settings.GetValueOrDefault("prefix", "");
    }

    public string Kind => LedgerSinkPlugin.Kind;
    public string Name { get; }
    public bool IsIdempotent => false;
    public bool IsConnected { get; private set; }

    public ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(Path.GetDirectoryName(_path)))
            throw new DirectoryNotFoundException($"ledger directory for {_path} does not exist");
        IsConnected = true;
        return ValueTask.CompletedTask;
    }

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        foreach (var payload in batch.Payloads) text.Append(_prefix).Append(payload.Data.ToJson()).Append('\n');
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await File.AppendAllTextAsync(_path, text.ToString(), cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        IsConnected = false;
        return ValueTask.CompletedTask;
    }
}

/// <summary>The plugin's registration: the application calls this at startup; nothing is discovered by scanning.</summary>
public static class LedgerSinkPlugin
{
    public const string Kind = "ledger";

    public static SinkRegistry AddLedgerSink(this SinkRegistry registry) => registry.Register(Kind, context => new LedgerSink(context));
}
