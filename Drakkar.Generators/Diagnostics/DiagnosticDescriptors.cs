using System;
using Microsoft.CodeAnalysis;

namespace Drakkar.Generators.Diagnostics;

/// <summary>Every diagnostic Drakkar reports. Ids are stable: never renumber or reuse one.</summary>
internal static class DiagnosticDescriptors
{
    private const string RoutingCategory = "Drakkar.Routing";
    private const string PayloadCategory = "Drakkar.Payload";
    private const string HandlerCategory = "Drakkar.Handler";
    private const string HelpBase = "https://github.com/drakkar-dotnet/drakkar/blob/main/docs/diagnostics/";

    public static readonly DiagnosticDescriptor AmbiguousSink = Create(
        "DRK0001", "Payload does not name its sink",
        "Handler '{0}' declares {1} {2} sinks ({3}); name the one this payload goes to, for example sink: \"{4}\"",
        RoutingCategory);

    public static readonly DiagnosticDescriptor UndeclaredSink = Create(
        "DRK0002", "Payload names a sink the handler does not declare",
        "Handler '{0}' declares no {1} sink named '{2}' (declared: {3}); use a declared name or add [Sink({4}, \"{2}\")] to the handler",
        RoutingCategory);

    public static readonly DiagnosticDescriptor InvalidSqlIdentifier = Create(
        "DRK0003", "Invalid SQL identifier",
        "'{0}' is not a valid SQL identifier for {1}; use letters, digits and underscores, not starting with a digit, at most 63 characters",
        RoutingCategory);

    public static readonly DiagnosticDescriptor PayloadNotPartial = Create(
        "DRK0004", "Payload type must be partial",
        "Payload type '{0}' must be declared partial (and so must every type that contains it) so the generator can implement IPayload<{0}>",
        PayloadCategory);

    public static readonly DiagnosticDescriptor UnsupportedMemberType = Create(
        "DRK0005", "Payload member type is not supported",
        "Member '{0}' of payload '{1}' has type '{2}', which the payload writers cannot handle{3}; use a supported type or mark the member [JsonIgnore]",
        PayloadCategory);

    public static readonly DiagnosticDescriptor DuplicateSink = Create(
        "DRK0006", "Sink declared twice",
        "Handler '{0}' declares the {1} sink '{2}' more than once; remove the duplicate [Sink]",
        HandlerCategory);

    public static readonly DiagnosticDescriptor IntervalOutOfRange = Create(
        "DRK0007", "Periodic interval out of range",
        "Periodic method '{0}' has an interval of {1} seconds; use between 0.001 and 4294967 seconds (about 49.7 days)",
        HandlerCategory);

    public static readonly DiagnosticDescriptor InvalidPeriodicSignature = Create(
        "DRK0008", "Periodic method has the wrong signature",
        "Periodic method '{0}' must be a non-generic instance method 'ValueTask {0}(CancellationToken)' or 'Task {0}(CancellationToken)'",
        HandlerCategory);

    public static readonly DiagnosticDescriptor HandlerNotPartial = Create(
        "DRK0009", "Handler must be partial",
        "Handler '{0}' uses [Sink] or [Periodic] and must be declared partial (and so must every type that contains it) so the generator can add its registrations",
        HandlerCategory);

    public static readonly DiagnosticDescriptor DuplicateJsonName = Create(
        "DRK0010", "Two payload members have the same JSON name",
        "Member '{0}' of payload '{2}' has the JSON name '{3}', which member '{1}' already has; the written object would hold the key twice and its readers would keep one value. Rename one of them or give it [JsonPropertyName]",
        PayloadCategory);

    public static readonly DiagnosticDescriptor InvalidSinkDeclaration = Create(
        "DRK0011", "Sink declaration no configuration can serve",
        "Handler '{0}' declares a sink no configuration can serve: {1}",
        HandlerCategory);

    public static DiagnosticDescriptor ById(string id) => id switch
    {
        "DRK0001" => AmbiguousSink,
        "DRK0002" => UndeclaredSink,
        "DRK0003" => InvalidSqlIdentifier,
        "DRK0004" => PayloadNotPartial,
        "DRK0005" => UnsupportedMemberType,
        "DRK0006" => DuplicateSink,
        "DRK0007" => IntervalOutOfRange,
        "DRK0008" => InvalidPeriodicSignature,
        "DRK0009" => HandlerNotPartial,
        "DRK0010" => DuplicateJsonName,
        "DRK0011" => InvalidSinkDeclaration,
        _ => throw new ArgumentOutOfRangeException(nameof(id), id, "unknown Drakkar diagnostic id"),
    };

    private static DiagnosticDescriptor Create(string id, string title, string message, string category) =>
        new(id, title, message, category, DiagnosticSeverity.Error, isEnabledByDefault: true,
            helpLinkUri: HelpBase + id + ".md");
}
