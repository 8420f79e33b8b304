namespace Drakkar;

/// <summary>A message read from the source topic.</summary>
public class SourceMessage
{
    public required string Topic { get; init; }
    public required int Partition { get; init; }
    public required long Offset { get; init; }
    /// <summary>The record key; null when the record has none.</summary>
    public byte[]? Key { get; init; }
    /// <summary>The record value; empty (never null) when the record has none.</summary>
    public byte[] Value { get; init; } = [];
    public DateTimeOffset Timestamp { get; init; }
    public IReadOnlyList<KeyValuePair<string, byte[]>> Headers { get; init; } = [];

    /// <summary>For a typed handler, why the value could not be decoded; null when it was (or for raw handlers).</summary>
    public string? DecodeError { get; init; }

    /// <summary>The record's <c>message</c> span while it is in the pipeline; null when tracing is off.</summary>
    internal System.Diagnostics.Activity? Span { get; set; }

    public override string ToString() => $"{Topic}[{Partition}]@{Offset}";
}

/// <summary>A source message whose value was decoded as <typeparamref name="T"/> (UTF-8 JSON).</summary>
public sealed class SourceMessage<T> : SourceMessage where T : class
{
    /// <summary>The decoded value, or null when the value could not be decoded (the raw bytes stay in <see cref="SourceMessage.Value"/>).</summary>
    public T? Payload { get; init; }
}
