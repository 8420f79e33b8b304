using Drakkar.Generators.Model;

namespace Drakkar.Generators.Emitting;

/// <summary>Emits a handler's declared sinks and periodic registrations.</summary>
internal static class HandlerEmitter
{
    private const string SinkList = "global::System.Collections.Generic.IReadOnlyList<global::Drakkar.SinkDeclaration>";
    private const string PeriodicList = "global::System.Collections.Generic.IReadOnlyList<global::Drakkar.PeriodicRegistration>";

    public static string Emit(HandlerModel model)
    {
        var declaration = model.Declaration;
        var writer = DeclarationEmitter.Begin(declaration, "partial " + declaration.Keyword + " " + declaration.Name);
        if (model.Sinks.Count > 0)
        {
            writer.Line("private static readonly " + SinkList + " __DrakkarDeclaredSinks = global::System.Array.AsReadOnly(new global::Drakkar.SinkDeclaration[]");
            writer.Line("{");
            foreach (var sink in model.Sinks)
            {
                var custom = sink.CustomKind is null ? "" : ", " + DeclarationEmitter.Literal(sink.CustomKind);
                writer.Line("    new global::Drakkar.SinkDeclaration(global::Drakkar.SinkKind." + sink.Kind + ", "
                    + DeclarationEmitter.Literal(sink.Name) + custom + "),");
            }
            writer.Line("});");
            writer.Line();
            writer.Line("/// <summary>The sink instances this handler routes to, from its <c>[Sink]</c> attributes.</summary>");
            writer.Line(model.OverrideModifiers + " " + SinkList + " DeclaredSinks => __DrakkarDeclaredSinks;");
        }
        if (model.Periodics.Count > 0)
        {
            if (model.Sinks.Count > 0) writer.Line();
            // Registrations capture this instance, so they are built once per handler rather than cached statically.
            writer.Line("private " + PeriodicList + "? __drakkarPeriodicMethods;");
            writer.Line();
            writer.Line("/// <summary>This handler's <c>[Periodic]</c> methods (after any a base handler registers).</summary>");
            writer.Line(model.OverrideModifiers + " " + PeriodicList + " PeriodicMethods => __drakkarPeriodicMethods ??= __DrakkarCreatePeriodicMethods();");
            writer.Line();
            writer.Open("private " + PeriodicList + " __DrakkarCreatePeriodicMethods()");
            writer.Line("var methods = new global::System.Collections.Generic.List<global::Drakkar.PeriodicRegistration>(base.PeriodicMethods);");
            foreach (var periodic in model.Periodics)
            {
                var call = "this." + periodic.MethodName + "(cancellationToken)";
                var run = periodic.ReturnsTask ? "new global::System.Threading.Tasks.ValueTask(" + call + ")" : call;
                writer.Line("methods.Add(new global::Drakkar.PeriodicRegistration(" + DeclarationEmitter.Literal(periodic.MethodName)
                    + ", global::System.TimeSpan.FromSeconds(" + periodic.Seconds + "d), global::Drakkar.PeriodicOnError." + periodic.OnError
                    + ", cancellationToken => " + run + "));");
            }
            writer.Line("return methods.AsReadOnly();");
            writer.Close();
        }
        return DeclarationEmitter.End(writer, declaration);
    }
}
