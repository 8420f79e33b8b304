using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Drakkar.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Drakkar.Generators.Parsing;

/// <summary>
/// Symbol-level rules shared by the generator and the analyzer: which members a payload serializes, under which
/// names, and how each member type is written. Mirrors System.Text.Json's defaults so the bytes agree.
/// </summary>
internal static class PayloadTypes
{
    public const string PayloadAttribute = "Drakkar.PayloadAttribute";
    private const string JsonSerialization = "System.Text.Json.Serialization.";

    public static readonly SymbolDisplayFormat FullyQualified = SymbolDisplayFormat.FullyQualifiedFormat
        .WithMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.EscapeKeywordIdentifiers
            | SymbolDisplayMiscellaneousOptions.UseSpecialTypes
            | SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    /// <summary>
    /// Public readable instance properties not marked <c>[JsonIgnore]</c>, most-derived type first and declaration
    /// order within a type (System.Text.Json's order), then stably ordered by <c>[JsonPropertyOrder]</c>.
    /// </summary>
    public static IReadOnlyList<IPropertySymbol> SerializableProperties(INamedTypeSymbol type)
    {
        var seen = new HashSet<string>();
        var result = new List<(IPropertySymbol Property, int Order, int Index)>();
        for (var current = type; current is not null && current.SpecialType != SpecialType.System_Object; current = current.BaseType)
        {
            foreach (var member in current.GetMembers())
            {
                if (member is not IPropertySymbol property || property.IsStatic || property.IsIndexer) continue;
                if (property.DeclaredAccessibility != Accessibility.Public) continue;
                if (property.GetMethod is null || property.GetMethod.DeclaredAccessibility != Accessibility.Public) continue;
                if (!seen.Add(property.Name)) continue;
                if (IgnoreConditionOf(property) is null) continue;
                result.Add((property, OrderOf(property), result.Count));
            }
        }
        return result.OrderBy(p => p.Order).ThenBy(p => p.Index).Select(p => p.Property).ToList();
    }

    private static int OrderOf(IPropertySymbol property)
    {
        foreach (var attribute in property.GetAttributes())
        {
            if (IsAttribute(attribute, JsonSerialization + "JsonPropertyOrderAttribute")
                && attribute.ConstructorArguments.Length == 1 && attribute.ConstructorArguments[0].Value is int order)
            {
                return order;
            }
        }
        return 0;
    }

    /// <summary>The member's JSON name: its <c>[JsonPropertyName]</c>, else snake_case of its name.</summary>
    public static string JsonName(IPropertySymbol property)
    {
        foreach (var attribute in property.GetAttributes())
        {
            if (IsAttribute(attribute, JsonSerialization + "JsonPropertyNameAttribute")
                && attribute.ConstructorArguments.Length == 1
                && attribute.ConstructorArguments[0].Value is string name)
            {
                return name;
            }
        }
        return SnakeCaseNaming.Convert(property.Name);
    }

    /// <summary>When the member is left out on write; null when it is always ignored.</summary>
    public static IgnoreCondition? IgnoreConditionOf(IPropertySymbol property)
    {
        foreach (var attribute in property.GetAttributes())
        {
            if (!IsAttribute(attribute, JsonSerialization + "JsonIgnoreAttribute")) continue;
            var condition = 1; // JsonIgnoreCondition.Always, the attribute's default
            foreach (var named in attribute.NamedArguments)
            {
                if (named.Key == "Condition" && named.Value.Value is int value) condition = value;
            }
            return condition switch
            {
                0 => IgnoreCondition.Never,
                2 => IgnoreCondition.WhenWritingDefault,
                3 => IgnoreCondition.WhenWritingNull,
                _ => null,
            };
        }
        return IgnoreCondition.Never;
    }

    public static bool HasAttribute(ISymbol symbol, string fullName) =>
        symbol.GetAttributes().Any(a => IsAttribute(a, fullName));

    public static bool IsPayloadType(ITypeSymbol type) =>
        type is INamedTypeSymbol { TypeKind: TypeKind.Class } named
        && (HasAttribute(named, PayloadAttribute) || ImplementsIPayloadOfSelf(named));

    /// <summary>
    /// The shape of a member type, or null with <paramref name="reason"/> when it cannot be written.
    /// <paramref name="memberAttributes"/> are the member's own attributes (a <c>[JsonConverter]</c> there matters).
    /// </summary>
    public static TypeShape? Classify(ITypeSymbol type, ImmutableArray<AttributeData> memberAttributes, out string reason)
    {
        reason = "";
        var stringEnumOnMember = false;
        foreach (var attribute in memberAttributes)
        {
            if (!IsAttribute(attribute, JsonSerialization + "JsonConverterAttribute")) continue;
            if (IsStringEnumConverter(attribute) && UnderlyingEnum(type) is not null)
            {
                stringEnumOnMember = true;
                continue;
            }
            reason = " (a custom [JsonConverter] is not supported)";
            return null;
        }
        return Classify(type, stringEnumOnMember, ref reason);
    }

    private static TypeShape? Classify(ITypeSymbol type, bool stringEnum, ref string reason)
    {
        var allowsNull = type.NullableAnnotation != NullableAnnotation.NotAnnotated;
        if (type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nullable)
        {
            var inner = Classify(nullable.TypeArguments[0], stringEnum, ref reason);
            return inner is null ? null : inner with { IsNullableValueType = true, AllowsNull = true };
        }

        // The top-level annotation travels in AllowsNull; type arguments keep theirs so generated code stays
        // warning-free under #nullable enable.
        var name = type.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(FullyQualified);
        TypeShape Simple(ShapeKind kind) => new(kind, name, false, !type.IsValueType && allowsNull, null, null);

        switch (type.SpecialType)
        {
            case SpecialType.System_String: return Simple(ShapeKind.String);
            case SpecialType.System_Boolean: return Simple(ShapeKind.Boolean);
            case SpecialType.System_Byte: return Simple(ShapeKind.Byte);
            case SpecialType.System_SByte: return Simple(ShapeKind.SByte);
            case SpecialType.System_Int16: return Simple(ShapeKind.Int16);
            case SpecialType.System_UInt16: return Simple(ShapeKind.UInt16);
            case SpecialType.System_Int32: return Simple(ShapeKind.Int32);
            case SpecialType.System_UInt32: return Simple(ShapeKind.UInt32);
            case SpecialType.System_Int64: return Simple(ShapeKind.Int64);
            case SpecialType.System_UInt64: return Simple(ShapeKind.UInt64);
            case SpecialType.System_Single: return Simple(ShapeKind.Single);
            case SpecialType.System_Double: return Simple(ShapeKind.Double);
            case SpecialType.System_Decimal: return Simple(ShapeKind.Decimal);
            case SpecialType.System_DateTime: return Simple(ShapeKind.DateTime);
        }

        if (type is IArrayTypeSymbol array)
        {
            if (array.Rank != 1)
            {
                reason = " (only single-dimensional arrays are supported)";
                return null;
            }
            if (array.ElementType.SpecialType == SpecialType.System_Byte) return Simple(ShapeKind.ByteArray);
            var element = Classify(array.ElementType, ImmutableArray<AttributeData>.Empty, out reason);
            return element is null ? null : Simple(ShapeKind.Array) with { Element = element };
        }

        if (type is not INamedTypeSymbol named)
        {
            reason = type.TypeKind == TypeKind.TypeParameter ? " (generic type parameters are not supported)" : "";
            return null;
        }

        switch (FullName(named.OriginalDefinition))
        {
            case "System.DateTimeOffset": return Simple(ShapeKind.DateTimeOffset);
            case "System.Guid": return Simple(ShapeKind.Guid);
            case "System.Collections.Generic.List`1":
                return Collection(ShapeKind.List, named.TypeArguments[0], ref reason);
            case "System.Collections.Generic.IReadOnlyList`1":
            case "System.Collections.Generic.IList`1":
                return Collection(ShapeKind.IndexableSequence, named.TypeArguments[0], ref reason);
            case "System.Collections.Generic.IEnumerable`1":
            case "System.Collections.Generic.IReadOnlyCollection`1":
            case "System.Collections.Generic.ICollection`1":
                return Collection(ShapeKind.Sequence, named.TypeArguments[0], ref reason);
            case "System.Collections.Generic.Dictionary`2":
            case "System.Collections.Generic.IDictionary`2":
            case "System.Collections.Generic.IReadOnlyDictionary`2":
                if (named.TypeArguments[0].SpecialType != SpecialType.System_String)
                {
                    reason = " (dictionary keys must be strings)";
                    return null;
                }
                return Collection(ShapeKind.Dictionary, named.TypeArguments[1], ref reason);
        }

        if (named.TypeKind == TypeKind.Enum)
        {
            var asString = stringEnum || named.GetAttributes().Any(IsStringEnumConverterAttribute);
            var underlying = Classify(named.EnumUnderlyingType!, false, ref reason)!.Kind;
            var members = new List<EnumMemberInfo>();
            var values = new HashSet<object>();
            foreach (var field in named.GetMembers().OfType<IFieldSymbol>())
            {
                // Aliases share a value; the first name wins, as a switch over values needs distinct labels.
                if (!field.HasConstantValue || field.ConstantValue is null || !values.Add(field.ConstantValue)) continue;
                var jsonName = field.Name;
                foreach (var attribute in field.GetAttributes())
                {
                    if (IsAttribute(attribute, JsonSerialization + "JsonStringEnumMemberNameAttribute")
                        && attribute.ConstructorArguments.Length == 1 && attribute.ConstructorArguments[0].Value is string custom)
                    {
                        jsonName = custom;
                    }
                }
                members.Add(new EnumMemberInfo(field.Name, jsonName));
            }
            var isFlags = HasAttribute(named, "System.FlagsAttribute");
            return Simple(ShapeKind.Enum) with { Enum = new EnumShape(underlying, asString, isFlags, members.ToEquatableArray()) };
        }

        if (IsPayloadType(named))
        {
            if (!ImplementsIPayloadOfSelf(named) && !TypeDeclarations.IsPartialWithContainers(named))
            {
                reason = " (its type is not partial, see DRK0004)";
                return null;
            }
            if (named.GetAttributes().Any(a => IsAttribute(a, JsonSerialization + "JsonConverterAttribute")))
            {
                reason = " (a custom [JsonConverter] is not supported)";
                return null;
            }
            return Simple(ShapeKind.Payload);
        }

        reason = named.TypeKind == TypeKind.Class ? " (a class used as a member must itself be a [Payload] type)" : "";
        return null;

        TypeShape? Collection(ShapeKind kind, ITypeSymbol elementType, ref string why)
        {
            var element = Classify(elementType, ImmutableArray<AttributeData>.Empty, out why);
            return element is null ? null : Simple(kind) with { Element = element };
        }
    }

    /// <summary>An identifier as C# source, escaped with <c>@</c> when it is a keyword.</summary>
    public static string Identifier(string name) =>
        SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None
            ? "@" + name
            : name;

    public static string FullName(INamedTypeSymbol type)
    {
        var ns = type.ContainingNamespace is { IsGlobalNamespace: false } n ? n.ToDisplayString() + "." : "";
        var outer = type.ContainingType is { } containing ? FullName(containing) + "+" : ns;
        return type.ContainingType is null ? ns + type.MetadataName : outer + type.MetadataName;
    }

    public static bool IsAttribute(AttributeData attribute, string fullName) =>
        attribute.AttributeClass is { } cls && FullName(cls) == fullName;

    private static ITypeSymbol? UnderlyingEnum(ITypeSymbol type) => type switch
    {
        INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } n => UnderlyingEnum(n.TypeArguments[0]),
        { TypeKind: TypeKind.Enum } => type,
        _ => null,
    };

    private static bool IsStringEnumConverterAttribute(AttributeData attribute) =>
        IsAttribute(attribute, JsonSerialization + "JsonConverterAttribute") && IsStringEnumConverter(attribute);

    private static bool IsStringEnumConverter(AttributeData attribute) =>
        attribute.ConstructorArguments.Length == 1
        && attribute.ConstructorArguments[0].Value is INamedTypeSymbol converter
        && FullName(converter.OriginalDefinition) is JsonSerialization + "JsonStringEnumConverter"
            or JsonSerialization + "JsonStringEnumConverter`1";

    private static bool ImplementsIPayloadOfSelf(INamedTypeSymbol type) =>
        type.AllInterfaces.Any(i => FullName(i.OriginalDefinition) == "Drakkar.IPayload`1"
            && SymbolEqualityComparer.Default.Equals(i.TypeArguments[0], type));
}
