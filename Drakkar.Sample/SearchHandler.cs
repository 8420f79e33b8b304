using System.Text.Json;

namespace Drakkar.Sample;

/// <summary>Turns search requests into runs of <c>rg</c> (or <c>grep</c>) counting matching lines.</summary>
public sealed class SearchHandler : DrakkarHandler
{
    public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending)
    {
        var tasks = new List<ExecutorTask>(messages.Count);
        foreach (var message in messages)
        {
            if (!TryRead(message.Value, out var requestId, out var pattern, out var path)) continue;
            tasks.Add(new ExecutorTask(TaskId.New("search"))
            {
                Args = ["-c", "--", pattern, path],
                SourceOffsets = [message.Offset],
                Metadata = { ["request_id"] = requestId, ["pattern"] = pattern },
            });
        }
        return ValueTask.FromResult<IReadOnlyList<ExecutorTask>>(tasks);
    }

    private static bool TryRead(byte[] value, out string requestId, out string pattern, out string path)
    {
        requestId = pattern = path = "";
        try
        {
            using var document = JsonDocument.Parse(value);
            var root = document.RootElement;
            requestId = root.GetProperty("request_id").GetString() ?? "";
            pattern = root.GetProperty("pattern").GetString() ?? "";
            path = root.GetProperty("path").GetString() ?? "";
            return pattern.Length > 0 && path.Length > 0;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return false;
        }
    }
}
