using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Drakkar.Generators.Model;

/// <summary>
/// Where a diagnostic points, as plain values: a <see cref="Location"/> holds its syntax tree alive and defeats
/// pipeline caching, this does not.
/// </summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

    public static LocationInfo? From(Location? location)
    {
        if (location is null || location.SourceTree is null) return null;
        return new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
    }
}

/// <summary>A diagnostic to report, by descriptor id, with its message arguments.</summary>
internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Arguments)
{
    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, Location? location, params string[] arguments) =>
        new(descriptor.Id, LocationInfo.From(location), arguments.ToEquatableArray());

    public Diagnostic ToDiagnostic()
    {
        var descriptor = Diagnostics.DiagnosticDescriptors.ById(Id);
        var args = new object[Arguments.Count];
        for (var i = 0; i < args.Length; i++) args[i] = Arguments[i];
        return Diagnostic.Create(descriptor, Location?.ToLocation(), args);
    }
}

/// <summary>A type enclosing a generated partial type (each needs its own partial declaration).</summary>
internal sealed record ContainingTypeInfo(string Keyword, string Name);

/// <summary>Where a generated partial type goes: namespace, enclosing types, and its own declaration head.</summary>
internal sealed record TypeDeclarationInfo(
    string? Namespace,
    EquatableArray<ContainingTypeInfo> ContainingTypes,
    string Keyword,
    string Name,
    string FullyQualifiedName,
    string HintName);
