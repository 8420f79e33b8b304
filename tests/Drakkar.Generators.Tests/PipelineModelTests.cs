using System.Reflection;
using Drakkar.Generators.Model;
using Microsoft.CodeAnalysis;

namespace Drakkar.Generators.Tests;

/// <summary>
/// Pipeline models must be plain values: a symbol, compilation, syntax node or location would pin a whole
/// compilation in memory and make every step's equality check fail, defeating incremental caching.
/// </summary>
public sealed class PipelineModelTests
{
    private static readonly Type[] Forbidden = [typeof(ISymbol), typeof(Compilation), typeof(SyntaxNode), typeof(Location), typeof(SyntaxTree), typeof(SemanticModel)];

    [Fact]
    public void Models_hold_no_symbols_compilations_syntax_or_locations()
    {
        var visited = new HashSet<Type>();
        Walk(typeof(PayloadModel), visited, "PayloadModel");
        Walk(typeof(HandlerModel), visited, "HandlerModel");

        Assert.Contains(typeof(TypeShape), visited);
        Assert.Contains(typeof(DiagnosticInfo), visited);
        Assert.Contains(typeof(LocationInfo), visited);
    }

    [Fact]
    public void Models_have_value_equality()
    {
        var shape = new TypeShape(ShapeKind.List, "global::System.Collections.Generic.List<int>", false, false,
            new TypeShape(ShapeKind.Int32, "int", false, false, null, null), null);
        var copy = shape with { Element = shape.Element! with { } };

        Assert.Equal(shape, copy);
        Assert.Equal(new[] { "a", "b" }.ToEquatableArray(), new[] { "a", "b" }.ToEquatableArray());
        Assert.NotEqual(new[] { "a" }.ToEquatableArray(), new[] { "b" }.ToEquatableArray());
    }

    private static void Walk(Type type, HashSet<Type> visited, string path)
    {
        if (!visited.Add(type)) return;
        foreach (var forbidden in Forbidden)
        {
            Assert.False(forbidden.IsAssignableFrom(type), $"{path} is a {forbidden.Name}");
        }
        if (type.IsPrimitive || type == typeof(string) || type.IsEnum) return;
        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            Walk(underlying, visited, path);
            return;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(EquatableArray<>))
        {
            Walk(type.GetGenericArguments()[0], visited, path + "[]");
            return;
        }
        if (type.Namespace?.StartsWith("Microsoft.CodeAnalysis.Text", StringComparison.Ordinal) == true && type.IsValueType) return;
        Assert.True(type.Namespace == "Drakkar.Generators.Model",
            $"{path} has type {type.FullName}, which is not a pipeline model type");

        // Instance fields are all a model holds (records keep their data in backing fields).
        foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            Walk(field.FieldType, visited, path + "." + field.Name);
        }
    }
}
