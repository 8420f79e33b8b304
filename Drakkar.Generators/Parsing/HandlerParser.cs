using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using Drakkar.Generators.Diagnostics;
using Drakkar.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Drakkar.Generators.Parsing;

/// <summary>Turns a handler class (one with <c>[Sink]</c> or <c>[Periodic]</c>) into a <see cref="HandlerModel"/>.</summary>
internal static class HandlerParser
{
    public const string SinkAttribute = "Drakkar.SinkAttribute";
    public const string PeriodicAttribute = "Drakkar.PeriodicAttribute";
    public const string HandlerBase = "Drakkar.DrakkarHandlerBase";

    public static HandlerModel? Parse(INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        if (type.TypeKind != TypeKind.Class || !IsHandler(type)) return null;
        var declaration = TypeDeclarations.Describe(type, "Handler");
        var diagnostics = new List<DiagnosticInfo>();

        if (TypeDeclarations.FirstNonPartial(type) is not null)
        {
            var location = type.DeclaringSyntaxReferences.Select(r => r.GetSyntax(cancellationToken)).OfType<TypeDeclarationSyntax>()
                .Select(s => s.Identifier.GetLocation()).FirstOrDefault();
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.HandlerNotPartial, location, type.Name));
            return new HandlerModel(declaration, "", EquatableArray<SinkModel>.Empty, EquatableArray<PeriodicModel>.Empty, false,
                diagnostics.ToEquatableArray());
        }

        var sinks = new List<SinkModel>();
        foreach (var attribute in type.GetAttributes())
        {
            if (ReadSink(attribute) is not { } sink) continue;
            if (Unconfigurable(sink) is { } reason)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidSinkDeclaration, AttributeLocation(attribute, cancellationToken),
                    type.Name, reason));
                continue;
            }
            if (sinks.Contains(sink))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.DuplicateSink, AttributeLocation(attribute, cancellationToken),
                    type.Name, sink.CustomKind ?? sink.Kind.ToLowerInvariant(), sink.Name));
                continue;
            }
            sinks.Add(sink);
        }
        // Sinks a base handler declares are routes of this handler too; the derived list replaces the base one.
        for (var baseType = type.BaseType; baseType is not null; baseType = baseType.BaseType)
        {
            foreach (var attribute in baseType.GetAttributes())
            {
                if (ReadSink(attribute) is { } sink && !sinks.Contains(sink)) sinks.Add(sink);
            }
        }

        var periodics = new List<PeriodicModel>();
        foreach (var method in type.GetMembers().OfType<IMethodSymbol>())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var attribute = method.GetAttributes().FirstOrDefault(a => PayloadTypes.IsAttribute(a, PeriodicAttribute));
            if (attribute is null) continue;
            var valid = true;
            // An argument that is not a constant is the compiler's error (CS0182) already: no second one about its value.
            var constant = attribute.ConstructorArguments.Length == 1 && attribute.ConstructorArguments[0].Value is double;
            var seconds = constant ? (double)attribute.ConstructorArguments[0].Value! : 0;
            if (!constant) valid = false;
            // At least 1 ms (a shorter interval is zero to the timers, and the loop spins) and at most the longest delay a
            // .NET timer takes (2^32 - 2 ms, about 49.7 days; beyond it the delay throws and the method never runs).
            else if (!(seconds >= 0.001) || !(seconds <= 4_294_967))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.IntervalOutOfRange, AttributeLocation(attribute, cancellationToken),
                    method.Name, seconds.ToString("R", CultureInfo.InvariantCulture)));
                valid = false;
            }
            var returnsTask = false;
            if (!HasPeriodicSignature(method, ref returnsTask))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidPeriodicSignature, method.Locations.FirstOrDefault(), method.Name));
                valid = false;
            }
            if (!valid) continue;
            var onError = "Continue";
            foreach (var named in attribute.NamedArguments)
            {
                if (named.Key == "OnError" && named.Value.Type is INamedTypeSymbol enumType && named.Value.Value is { } raw)
                {
                    onError = EnumMemberName(enumType, raw) ?? onError;
                }
            }
            periodics.Add(new PeriodicModel(method.Name, seconds.ToString("R", CultureInfo.InvariantCulture), onError, returnsTask));
        }

        return new HandlerModel(declaration, OverrideModifiers(type), sinks.ToEquatableArray(), periodics.ToEquatableArray(), true,
            diagnostics.ToEquatableArray());
    }

    public static bool IsHandler(INamedTypeSymbol type)
    {
        for (var current = type.BaseType; current is not null; current = current.BaseType)
        {
            if (PayloadTypes.FullName(current) == HandlerBase) return true;
        }
        return false;
    }

    // The configuration sections of the built-in kinds and of plugins (Drakkar.Runtime/Sinks/Registry/SinkKinds.cs;
    // SinkKindListTests keeps the two equal): a plugin kind cannot take one of these names, the registry refuses it.
    internal static readonly string[] BuiltInSections = ["kafka", "postgres", "mongo", "redis", "http", "filesystem", "custom"];

    /// <summary>Why no configuration can serve <paramref name="sink"/> (an empty name or plugin kind, a built-in kind's name), or null.</summary>
    private static string? Unconfigurable(SinkModel sink)
    {
        if (sink.CustomKind is { } kind && string.IsNullOrWhiteSpace(kind))
            return "its plugin kind is empty; give the kind the plugin registers with SinkRegistry.Register";
        // In any case: "Kafka" is meant as the built-in sink, and the registry refuses it as it refuses "kafka".
        if (sink.CustomKind is { } builtIn && BuiltInSections.Contains(builtIn, System.StringComparer.OrdinalIgnoreCase))
            return $"its plugin kind '{builtIn}' is a built-in kind's name, which no plugin can register; use SinkKind for the built-in sink, or the plugin's own kind";
        if (string.IsNullOrWhiteSpace(sink.Name))
            return "its name is empty; give it the name of its instance in the configuration (sinks.<kind>.<name>)";
        return null;
    }

    /// <summary>The declared sink of a <c>[Sink]</c> attribute, or null for any other attribute.</summary>
    public static SinkModel? ReadSink(AttributeData attribute)
    {
        if (!PayloadTypes.IsAttribute(attribute, SinkAttribute) || attribute.ConstructorArguments.Length != 2) return null;
        var first = attribute.ConstructorArguments[0];
        if (attribute.ConstructorArguments[1].Value is not string name) return null;
        if (first.Value is string customKind) return new SinkModel("Custom", name, customKind);
        if (first.Type is INamedTypeSymbol kindType && first.Value is { } raw && EnumMemberName(kindType, raw) is { } kind)
        {
            return new SinkModel(kind, name, null);
        }
        return null;
    }

    private static bool HasPeriodicSignature(IMethodSymbol method, ref bool returnsTask)
    {
        if (method.IsStatic || method.IsGenericMethod || method.Parameters.Length != 1) return false;
        if (method.Parameters[0].Type is not INamedTypeSymbol parameter || PayloadTypes.FullName(parameter) != "System.Threading.CancellationToken"
            || method.Parameters[0].RefKind != RefKind.None)
        {
            return false;
        }
        if (method.ReturnType is not INamedTypeSymbol returnType) return false;
        switch (PayloadTypes.FullName(returnType))
        {
            case "System.Threading.Tasks.ValueTask":
                return true;
            case "System.Threading.Tasks.Task":
                returnsTask = true;
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// Overriding a <c>protected internal</c> member from an assembly that cannot see the runtime's internals must
    /// say <c>protected</c> only; from the runtime itself, or an assembly it grants InternalsVisibleTo (its tests),
    /// it must keep <c>protected internal</c>.
    /// </summary>
    private static string OverrideModifiers(INamedTypeSymbol type)
    {
        for (var current = type.BaseType; current is not null; current = current.BaseType)
        {
            if (PayloadTypes.FullName(current) != HandlerBase) continue;
            return SymbolEqualityComparer.Default.Equals(current.ContainingAssembly, type.ContainingAssembly)
                   || current.ContainingAssembly.GivesAccessTo(type.ContainingAssembly)
                ? "protected internal override"
                : "protected override";
        }
        return "protected override";
    }

    private static string? EnumMemberName(INamedTypeSymbol enumType, object value) =>
        enumType.GetMembers().OfType<IFieldSymbol>().FirstOrDefault(f => f.HasConstantValue && Equals(f.ConstantValue, value))?.Name;

    private static Location? AttributeLocation(AttributeData attribute, CancellationToken cancellationToken) =>
        attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken).GetLocation();
}
