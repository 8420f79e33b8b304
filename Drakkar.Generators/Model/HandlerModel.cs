namespace Drakkar.Generators.Model;

/// <summary>A <c>[Sink]</c> declaration: <paramref name="Kind"/> is the <c>SinkKind</c> member name.</summary>
internal sealed record SinkModel(string Kind, string Name, string? CustomKind);

/// <summary>A <c>[Periodic]</c> method; <paramref name="Seconds"/> is a round-trippable invariant literal.</summary>
internal sealed record PeriodicModel(string MethodName, string Seconds, string OnError, bool ReturnsTask);

internal sealed record HandlerModel(
    TypeDeclarationInfo Declaration,
    string OverrideModifiers,
    EquatableArray<SinkModel> Sinks,
    EquatableArray<PeriodicModel> Periodics,
    bool Emit,
    EquatableArray<DiagnosticInfo> Diagnostics);
