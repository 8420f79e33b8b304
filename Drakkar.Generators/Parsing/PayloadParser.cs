using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Drakkar.Generators.Diagnostics;
using Drakkar.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Drakkar.Generators.Parsing;

/// <summary>Turns a <c>[Payload]</c> type symbol into a <see cref="PayloadModel"/> (plain values only).</summary>
internal static class PayloadParser
{
    public static PayloadModel? Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetSymbol is not INamedTypeSymbol type) return null;
        var declaration = TypeDeclarations.Describe(type, "Payload");
        var location = context.TargetNode is TypeDeclarationSyntax syntax ? syntax.Identifier.GetLocation() : type.Locations.FirstOrDefault();

        if (TypeDeclarations.FirstNonPartial(type) is not null)
        {
            var diagnostic = DiagnosticInfo.Create(DiagnosticDescriptors.PayloadNotPartial, location, type.Name);
            return new PayloadModel(declaration, false, type.IsAbstract, false, EquatableArray<PayloadMemberModel>.Empty,
                EquatableArray<ConstructorParameterModel>.Empty, EquatableArray<InitAccessorModel>.Empty, true,
                new[] { diagnostic }.ToEquatableArray());
        }

        var diagnostics = new List<DiagnosticInfo>();
        var constructor = type.IsAbstract ? null : ChooseConstructor(type);
        var members = new List<PayloadMemberModel>();
        var initAccessors = new List<InitAccessorModel>();
        var hasErrors = false;
        // Each JSON name and the member that writes it: two members with one name would write an object with a duplicate
        // key, whose consumers keep one value and lose the other (System.Text.Json refuses such a type).
        var jsonNames = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in PayloadTypes.SerializableProperties(type))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var shape = PayloadTypes.Classify(property.Type, property.GetAttributes(), out var reason);
            if (shape is null)
            {
                hasErrors = true;
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedMemberType, property.Locations.FirstOrDefault(),
                    property.Name, type.Name, property.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat), reason));
                continue;
            }

            var parameter = constructor?.Parameters.FirstOrDefault(p => string.Equals(p.Name, property.Name, StringComparison.OrdinalIgnoreCase));
            var binding = BindingOf(type, property, parameter);
            var required = binding switch
            {
                ReadBinding.Constructor => !parameter!.HasExplicitDefaultValue && !shape.AllowsNull,
                ReadBinding.RequiredInitializer => true,
                _ => false,
            } || PayloadTypes.HasAttribute(property, "System.Text.Json.Serialization.JsonRequiredAttribute");
            if (binding == ReadBinding.InitAccessor)
            {
                initAccessors.Add(new InitAccessorModel(members.Count, property.ContainingType.ToDisplayString(PayloadTypes.FullyQualified)));
            }
            var jsonName = PayloadTypes.JsonName(property);
            if (jsonNames.TryGetValue(jsonName, out var first))
            {
                hasErrors = true;
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.DuplicateJsonName, property.Locations.FirstOrDefault(),
                    property.Name, first, type.Name, jsonName));
                continue;
            }
            jsonNames.Add(jsonName, property.Name);
            members.Add(new PayloadMemberModel(PayloadTypes.Identifier(property.Name), jsonName, shape, binding, required,
                PayloadTypes.IgnoreConditionOf(property) ?? IgnoreCondition.Never));
        }

        var parameters = new List<ConstructorParameterModel>();
        if (constructor is not null)
        {
            foreach (var parameter in constructor.Parameters)
            {
                var index = members.FindIndex(m => m.Binding == ReadBinding.Constructor
                    && string.Equals(m.PropertyName.TrimStart('@'), parameter.Name, StringComparison.OrdinalIgnoreCase));
                parameters.Add(new ConstructorParameterModel(
                    PayloadTypes.Identifier(parameter.Name), parameter.Type.ToDisplayString(PayloadTypes.FullyQualified), index, DefaultValueOf(parameter)));
            }
        }

        var hidesBase = false;
        for (var baseType = type.BaseType; baseType is not null; baseType = baseType.BaseType)
        {
            hidesBase |= PayloadTypes.IsPayloadType(baseType);
        }
        return new PayloadModel(declaration, true, type.IsAbstract, hidesBase, members.ToEquatableArray(), parameters.ToEquatableArray(),
            initAccessors.ToEquatableArray(), hasErrors, diagnostics.ToEquatableArray());
    }

    private static ReadBinding BindingOf(INamedTypeSymbol type, IPropertySymbol property, IParameterSymbol? parameter)
    {
        if (parameter is not null) return ReadBinding.Constructor;
        var setter = property.SetMethod;
        if (setter is null) return ReadBinding.None;
        var declaredHere = SymbolEqualityComparer.Default.Equals(property.ContainingType, type);
        if (!declaredHere && setter.DeclaredAccessibility == Accessibility.Private) return ReadBinding.None;
        if (property.IsRequired) return ReadBinding.RequiredInitializer;
        return setter.IsInitOnly ? ReadBinding.InitAccessor : ReadBinding.Setter;
    }

    /// <summary>
    /// System.Text.Json's choice where it has one: <c>[JsonConstructor]</c>, else a public parameterless constructor,
    /// else the public constructor with the most parameters (a record's primary constructor); never a record's copy
    /// constructor.
    /// </summary>
    private static IMethodSymbol? ChooseConstructor(INamedTypeSymbol type)
    {
        var candidates = type.InstanceConstructors
            .Where(c => !(c.Parameters.Length == 1 && SymbolEqualityComparer.Default.Equals(c.Parameters[0].Type, type)))
            .ToList();
        return candidates.FirstOrDefault(c => PayloadTypes.HasAttribute(c, "System.Text.Json.Serialization.JsonConstructorAttribute"))
            ?? candidates.FirstOrDefault(c => c.DeclaredAccessibility == Accessibility.Public && c.Parameters.Length == 0)
            ?? candidates.Where(c => c.DeclaredAccessibility == Accessibility.Public).OrderByDescending(c => c.Parameters.Length).FirstOrDefault()
            ?? candidates.OrderBy(c => c.Parameters.Length).FirstOrDefault();
    }

    private static string? DefaultValueOf(IParameterSymbol parameter)
    {
        if (!parameter.HasExplicitDefaultValue) return null;
        var typeName = parameter.Type.ToDisplayString(PayloadTypes.FullyQualified);
        return parameter.ExplicitDefaultValue switch
        {
            null => "default",
            double d when double.IsNaN(d) => "global::System.Double.NaN",
            double d when double.IsInfinity(d) => d > 0 ? "global::System.Double.PositiveInfinity" : "global::System.Double.NegativeInfinity",
            float f when float.IsNaN(f) => "global::System.Single.NaN",
            float f when float.IsInfinity(f) => f > 0 ? "global::System.Single.PositiveInfinity" : "global::System.Single.NegativeInfinity",
            var value => "(" + typeName + ")(" + SymbolDisplay.FormatPrimitive(value, quoteStrings: true, useHexadecimalNumbers: false) + ")",
        };
    }
}
