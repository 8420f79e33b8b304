using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Drakkar.Generators.Diagnostics;
using Drakkar.Generators.Model;
using Drakkar.Generators.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace Drakkar.Generators.Analyzers;

/// <summary>
/// Checks payload factory calls (<c>KafkaPayload.Of</c> and friends) where they are written: inside a handler, the
/// sink they name must be one the handler declares, and an unnamed payload must not have several candidates;
/// anywhere, a constant PostgreSQL table and the payload's column names must be valid SQL identifiers.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class SinkRoutingAnalyzer : DiagnosticAnalyzer
{
    /// <summary>Each payload factory type and the <c>SinkKind</c> it targets; must agree with the runtime's list (SinkKinds, checked by a test).</summary>
    internal static readonly (string Type, string Kind)[] Factories =
    [
        ("Drakkar.KafkaPayload", "Kafka"),
        ("Drakkar.PostgresPayload", "Postgres"),
        ("Drakkar.MongoPayload", "Mongo"),
        ("Drakkar.RedisPayload", "Redis"),
        ("Drakkar.HttpPayload", "Http"),
        ("Drakkar.FilePayload", "Filesystem"),
        ("Drakkar.CustomPayload", "Custom"),
    ];

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.AmbiguousSink, DiagnosticDescriptors.UndeclaredSink, DiagnosticDescriptors.InvalidSqlIdentifier);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var factories = new Dictionary<INamedTypeSymbol, string>(SymbolEqualityComparer.Default);
            foreach (var (typeName, kind) in Factories)
            {
                if (start.Compilation.GetTypeByMetadataName(typeName) is { } type) factories[type] = kind;
            }
            if (factories.Count == 0) return;
            start.RegisterOperationAction(operation => AnalyzeInvocation(operation, factories), OperationKind.Invocation);
        });
    }

    /// <summary>
    /// The rule identifiers follow, the PostgreSQL sink's at run time: <c>^[A-Za-z_][A-Za-z0-9_]*$</c>, at most 63
    /// characters (PostgreSQL's identifier length).
    /// </summary>
    public static bool IsValidSqlIdentifier(string value)
    {
        if (value.Length is 0 or > 63 || !(IsAsciiLetter(value[0]) || value[0] == '_')) return false;
        foreach (var c in value)
        {
            if (!(IsAsciiLetter(c) || c == '_' || c is >= '0' and <= '9')) return false;
        }
        return true;
    }

    private static bool IsAsciiLetter(char c) => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z';

    private static void AnalyzeInvocation(OperationAnalysisContext context, Dictionary<INamedTypeSymbol, string> factories)
    {
        var invocation = (IInvocationOperation)context.Operation;
        var method = invocation.TargetMethod;
        if (method.Name != "Of" || !method.IsStatic || !factories.TryGetValue(method.ContainingType, out var kind)) return;

        if (kind == "Postgres") CheckSqlIdentifiers(context, invocation);

        var handler = context.ContainingSymbol.ContainingType;
        if (handler is null || !HandlerParser.IsHandler(handler)) return;
        var declared = DeclaredSinks(handler);
        // A handler without [Sink] declarations opted out of compile-time routing; runtime checks still apply.
        if (declared.Count == 0) return;

        string? customKind = null;
        if (kind == "Custom")
        {
            if (ConstantString(Argument(invocation, "kind")) is not { } constantKind) return;
            customKind = constantKind;
        }
        var candidates = declared.Where(s => s.Kind == kind && (customKind is null || s.CustomKind == customKind)).ToList();
        var kindLabel = customKind ?? kind.ToLowerInvariant();

        var sinkArgument = Argument(invocation, "sink");
        string? name = sinkArgument is null || sinkArgument.ArgumentKind == ArgumentKind.DefaultValue ? "" : ConstantString(sinkArgument);
        if (name is null) return;
        var declaredList = candidates.Count == 0 ? "none" : string.Join(", ", candidates.Select(s => "'" + s.Name + "'"));

        if (name.Length == 0)
        {
            if (candidates.Count < 2) return;
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.AmbiguousSink, invocation.Syntax.GetLocation(),
                handler.Name, candidates.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), kindLabel, declaredList,
                candidates[0].Name));
            return;
        }
        if (candidates.Any(s => s.Name == name)) return;
        var attributeKind = customKind is null ? "SinkKind." + kind : SymbolDisplayString(customKind);
        context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.UndeclaredSink, sinkArgument!.Value.Syntax.GetLocation(),
            handler.Name, kindLabel, name, declaredList, attributeKind));
    }

    private static void CheckSqlIdentifiers(OperationAnalysisContext context, IInvocationOperation invocation)
    {
        var table = Argument(invocation, "table");
        if (ConstantString(table) is { } tableName && !IsValidSqlIdentifier(tableName))
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InvalidSqlIdentifier, table!.Value.Syntax.GetLocation(),
                tableName, "a PostgreSQL table name"));
        }
        if (invocation.TargetMethod.TypeArguments.Length != 1 || invocation.TargetMethod.TypeArguments[0] is not INamedTypeSymbol dataType
            || !PayloadTypes.IsPayloadType(dataType))
        {
            return;
        }
        var data = Argument(invocation, "data");
        foreach (var property in PayloadTypes.SerializableProperties(dataType))
        {
            var column = PayloadTypes.JsonName(property);
            if (IsValidSqlIdentifier(column)) continue;
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InvalidSqlIdentifier,
                (data?.Value.Syntax ?? invocation.Syntax).GetLocation(),
                column, "the column of member '" + property.Name + "' of payload '" + dataType.Name + "'"));
        }
    }

    private static List<SinkModel> DeclaredSinks(INamedTypeSymbol handler)
    {
        var sinks = new List<SinkModel>();
        for (var type = handler; type is not null; type = type.BaseType)
        {
            foreach (var attribute in type.GetAttributes())
            {
                if (HandlerParser.ReadSink(attribute) is { } sink && !sinks.Contains(sink)) sinks.Add(sink);
            }
        }
        return sinks;
    }

    private static IArgumentOperation? Argument(IInvocationOperation invocation, string parameter) =>
        invocation.Arguments.FirstOrDefault(a => a.Parameter?.Name == parameter);

    private static string? ConstantString(IArgumentOperation? argument) =>
        argument is { Value.ConstantValue: { HasValue: true, Value: string value } } ? value : null;

    private static string SymbolDisplayString(string value) => Microsoft.CodeAnalysis.CSharp.SymbolDisplay.FormatLiteral(value, quote: true);
}
