using System.Collections.Generic;
using System.Linq;
using Drakkar.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Drakkar.Generators.Parsing;

/// <summary>How to re-open a type as a partial declaration in generated code.</summary>
internal static class TypeDeclarations
{
    private static readonly SymbolDisplayFormat NameWithTypeParameters = new(
        genericsOptions: SymbolDisplayGenericsOptions.IncludeTypeParameters,
        miscellaneousOptions: SymbolDisplayMiscellaneousOptions.EscapeKeywordIdentifiers);

    /// <summary>True when the type and every type containing it are declared partial in source.</summary>
    public static bool IsPartialWithContainers(INamedTypeSymbol type)
    {
        for (var current = type; current is not null; current = current.ContainingType)
        {
            if (!IsPartial(current)) return false;
        }
        return true;
    }

    /// <summary>The first of the type and its containers that is not partial, or null.</summary>
    public static INamedTypeSymbol? FirstNonPartial(INamedTypeSymbol type)
    {
        for (var current = type; current is not null; current = current.ContainingType)
        {
            if (!IsPartial(current)) return current;
        }
        return null;
    }

    public static TypeDeclarationInfo Describe(INamedTypeSymbol type, string hintSuffix)
    {
        var containing = new List<ContainingTypeInfo>();
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            containing.Insert(0, new ContainingTypeInfo(Keyword(outer), outer.ToDisplayString(NameWithTypeParameters)));
        }
        var ns = type.ContainingNamespace is { IsGlobalNamespace: false } n ? n.ToDisplayString() : null;
        var fullyQualified = type.ToDisplayString(PayloadTypes.FullyQualified);
        var hint = PayloadTypes.FullName(type).Replace('`', '_').Replace('+', '.') + "." + hintSuffix + ".g.cs";
        return new TypeDeclarationInfo(ns, containing.ToEquatableArray(), Keyword(type),
            type.ToDisplayString(NameWithTypeParameters), fullyQualified, hint);
    }

    private static bool IsPartial(INamedTypeSymbol type) =>
        type.DeclaringSyntaxReferences.Length > 0
        && type.DeclaringSyntaxReferences.Any(r => r.GetSyntax() is TypeDeclarationSyntax declaration
            && declaration.Modifiers.Any(SyntaxKind.PartialKeyword));

    private static string Keyword(INamedTypeSymbol type) => type switch
    {
        { IsRecord: true, IsValueType: true } => "record struct",
        { IsRecord: true } => "record",
        { TypeKind: TypeKind.Interface } => "interface",
        { IsValueType: true } => "struct",
        _ => "class",
    };
}
