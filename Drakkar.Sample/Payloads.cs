namespace Drakkar.Sample;

/// <summary>A search request read from the source topic.</summary>
[Payload]
public sealed partial record SearchRequest(string RequestId, string Pattern, string Path);

/// <summary>What the worker reports for each request.</summary>
[Payload]
public sealed partial record SearchResult(
    string RequestId,
    string Pattern,
    string Path,
    int MatchCount,
    double DurationSeconds,
    IReadOnlyList<string> Matches,
    string? Error);
