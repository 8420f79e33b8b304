using Drakkar;

namespace DrakkarWorker;

/// <summary>A document read from the source topic: <c>{"id": "...", "text": "..."}</c>.</summary>
[Payload]
public sealed partial record Document(string Id, string Text);

/// <summary>What the worker reports for each document.</summary>
[Payload]
public sealed partial record WordCount(string Id, int Words);

/// <summary>A source message that is not a <see cref="Document"/>, kept with the reason rather than dropped.</summary>
[Payload]
public sealed partial record Undecodable(string Topic, int Partition, long Offset, string Error);
