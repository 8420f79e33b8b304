using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Drakkar.Generators.Emitting;
using Drakkar.Generators.Model;
using Drakkar.Generators.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Drakkar.Generators;

/// <summary>
/// Implements <c>IPayload&lt;T&gt;</c> for every <c>[Payload]</c> type and adds declared sinks and periodic
/// registrations to every handler that has <c>[Sink]</c> or <c>[Periodic]</c>.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class DrakkarGenerator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var payloads = context.SyntaxProvider
            .ForAttributeWithMetadataName(PayloadTypes.PayloadAttribute,
                static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax,
                PayloadParser.Parse)
            .Where(static model => model is not null)
            .Select(static (model, _) => model!)
            .WithTrackingName(TrackingNames.PayloadModels);
        context.RegisterSourceOutput(payloads, static (output, model) =>
        {
            foreach (var diagnostic in model.Diagnostics) output.ReportDiagnostic(diagnostic.ToDiagnostic());
            if (model.Emit) output.AddSource(model.Declaration.HintName, PayloadEmitter.Emit(model));
        });

        var fromSinks = context.SyntaxProvider
            .ForAttributeWithMetadataName(HandlerParser.SinkAttribute,
                static (node, _) => node is ClassDeclarationSyntax,
                static (syntax, token) => HandlerParser.Parse((INamedTypeSymbol)syntax.TargetSymbol, token))
            .WithTrackingName(TrackingNames.SinkHandlers);
        var fromPeriodics = context.SyntaxProvider
            .ForAttributeWithMetadataName(HandlerParser.PeriodicAttribute,
                static (node, _) => node is MethodDeclarationSyntax,
                static (syntax, token) => HandlerParser.Parse(syntax.TargetSymbol.ContainingType, token))
            .WithTrackingName(TrackingNames.PeriodicHandlers);
        // A handler shows up once per [Sink] declaration and once per [Periodic] method: merge to one model each.
        var handlers = fromSinks.Collect()
            .Combine(fromPeriodics.Collect())
            .SelectMany(static (pair, _) => Distinct(pair.Left, pair.Right))
            .WithTrackingName(TrackingNames.HandlerModels);
        context.RegisterSourceOutput(handlers, static (output, model) =>
        {
            foreach (var diagnostic in model.Diagnostics) output.ReportDiagnostic(diagnostic.ToDiagnostic());
            if (model.Emit) output.AddSource(model.Declaration.HintName, HandlerEmitter.Emit(model));
        });
    }

    private static ImmutableArray<HandlerModel> Distinct(ImmutableArray<HandlerModel?> left, ImmutableArray<HandlerModel?> right)
    {
        var byName = new Dictionary<string, HandlerModel>(StringComparer.Ordinal);
        foreach (var model in left.Concat(right))
        {
            if (model is not null && !byName.ContainsKey(model.Declaration.HintName)) byName.Add(model.Declaration.HintName, model);
        }
        return byName.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value).ToImmutableArray();
    }
}

/// <summary>Names of pipeline steps, for incrementality tests.</summary>
internal static class TrackingNames
{
    public const string PayloadModels = nameof(PayloadModels);
    public const string SinkHandlers = nameof(SinkHandlers);
    public const string PeriodicHandlers = nameof(PeriodicHandlers);
    public const string HandlerModels = nameof(HandlerModels);
}
