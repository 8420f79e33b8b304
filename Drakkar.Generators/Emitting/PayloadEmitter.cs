using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Drakkar.Generators.Model;

namespace Drakkar.Generators.Emitting;

/// <summary>
/// Emits a payload's <c>IPayload&lt;T&gt;</c> implementation: JSON writer (byte-identical to System.Text.Json with
/// snake_case names), JSON reader, BSON writer, PostgreSQL columns and row writer.
/// </summary>
internal sealed class PayloadEmitter
{
    private const string JsonWriter = "global::System.Text.Json.Utf8JsonWriter";
    private const string JsonReader = "global::System.Text.Json.Utf8JsonReader";
    private const string TokenType = "global::System.Text.Json.JsonTokenType";
    private const string JsonException = "global::System.Text.Json.JsonException";
    private const string ColumnList = "global::System.Collections.Generic.IReadOnlyList<global::Drakkar.PayloadColumn>";

    private readonly PayloadModel _model;
    private readonly SourceWriter _writer;
    private readonly string _type;
    private readonly string _displayName;
    private int _counter;
    // The member whose JSON is being written, named in the refusal of a NaN or infinite number ("Reading.Score").
    private string _jsonMember = "";

    private PayloadEmitter(PayloadModel model, SourceWriter writer)
    {
        _model = model;
        _writer = writer;
        _type = model.Declaration.FullyQualifiedName;
        _displayName = model.Declaration.Name;
    }

    public static string Emit(PayloadModel model)
    {
        var declaration = model.Declaration;
        var writer = DeclarationEmitter.Begin(declaration,
            "partial " + declaration.Keyword + " " + declaration.Name + " : global::Drakkar.IPayload<" + declaration.FullyQualifiedName + ">");
        var emitter = new PayloadEmitter(model, writer);
        if (model.HasErrors) emitter.EmitFallback();
        else emitter.EmitMembers();
        return DeclarationEmitter.End(writer, declaration);
    }

    /// <summary>
    /// A base payload's <c>Columns</c> and <c>ReadJson</c> have the same signatures and must be hidden explicitly;
    /// the writers take the derived type and are overloads instead.
    /// </summary>
    private string New => _model.HidesBasePayload ? "new " : "";

    /// <summary>
    /// Members that satisfy the interface and throw, so a payload with an unsupported member shows its DRK
    /// diagnostic and nothing else (no follow-on "does not implement IPayload" errors at every use).
    /// </summary>
    private void EmitFallback()
    {
        var message = DeclarationEmitter.Literal(
            "Payload '" + _displayName + "' has build errors (see its DRK diagnostics); its generated members are unavailable.");
        var fail = "throw new global::System.InvalidOperationException(" + message + ");";
        _writer.Line("public static " + New + ColumnList + " Columns => " + fail.TrimEnd(';') + ";");
        _writer.Line("public static " + "void WriteJson(" + JsonWriter + " writer, " + _type + " value) => " + fail.TrimEnd(';') + ";");
        _writer.Line("public static " + New + _type + " ReadJson(ref " + JsonReader + " reader) => " + fail.TrimEnd(';') + ";");
        _writer.Line("public static " + "void WriteBson(global::Drakkar.BsonWriter writer, " + _type + " value) => " + fail.TrimEnd(';') + ";");
        _writer.Line("public static " + "void WriteRow(global::Drakkar.IRowWriter writer, " + _type + " value) => " + fail.TrimEnd(';') + ";");
    }

    private void EmitMembers()
    {
        var members = _model.Members;
        for (var i = 0; i < members.Count; i++)
        {
            _writer.Line("private static readonly global::System.Text.Json.JsonEncodedText __DrakkarName" + Index(i)
                + " = global::System.Text.Json.JsonEncodedText.Encode(" + DeclarationEmitter.Literal(members[i].JsonName) + ");");
        }
        _writer.Line("private static readonly " + ColumnList + " __DrakkarColumns = global::System.Array.AsReadOnly(new global::Drakkar.PayloadColumn[]");
        _writer.Line("{");
        foreach (var member in members)
        {
            _writer.Line("    new global::Drakkar.PayloadColumn(" + DeclarationEmitter.Literal(member.JsonName) + ", "
                + DeclarationEmitter.Literal(PostgresType(member.Shape)) + "),");
        }
        _writer.Line("});");
        _writer.Line();
        _writer.Line("/// <summary>The PostgreSQL columns, in the order <see cref=\"WriteRow\"/> writes them.</summary>");
        _writer.Line("public static " + New + ColumnList + " Columns => __DrakkarColumns;");
        _writer.Line();
        EmitWriteJson();
        _writer.Line();
        EmitReadJson();
        _writer.Line();
        EmitWriteBson();
        _writer.Line();
        EmitWriteRow();
        EmitHelpers();
    }

    // ---- JSON writer -------------------------------------------------------------------------------------------

    private void EmitWriteJson()
    {
        _writer.Line("/// <summary>Writes <paramref name=\"value\"/> as one JSON object.</summary>");
        _writer.Open("public static " + "void WriteJson(" + JsonWriter + " writer, " + _type + " value)");
        _writer.Open("if (value is null)");
        _writer.Line("writer.WriteNullValue();");
        _writer.Line("return;");
        _writer.Close();
        _writer.Line("writer.WriteStartObject();");
        for (var i = 0; i < _model.Members.Count; i++)
        {
            var member = _model.Members[i];
            _jsonMember = _displayName + "." + member.PropertyName;
            WithIgnoreCondition(member, "value." + member.PropertyName, () =>
                WriteJsonProperty("writer", "__DrakkarName" + Index(i), "value." + member.PropertyName, member.Shape));
        }
        _writer.Line("writer.WriteEndObject();");
        _writer.Close();
    }

    private void WithIgnoreCondition(PayloadMemberModel member, string access, System.Action body)
    {
        var condition = member.Ignore switch
        {
            IgnoreCondition.WhenWritingNull when member.Shape.AllowsNull => access + " is not null",
            IgnoreCondition.WhenWritingDefault => "!global::System.Collections.Generic.EqualityComparer<" + member.Shape.DeclaredTypeName
                + ">.Default.Equals(" + access + ", default!)",
            _ => null,
        };
        if (condition is null)
        {
            body();
            return;
        }
        _writer.Open("if (" + condition + ")");
        body();
        _writer.Close();
    }

    private void WriteJsonProperty(string writer, string name, string access, TypeShape shape)
    {
        if (shape.Kind == ShapeKind.String)
        {
            _writer.Line(writer + ".WriteString(" + name + ", " + access + ");");
            return;
        }
        if (shape.IsNullableValueType || !shape.IsValueType)
        {
            var local = Fresh("v");
            _writer.Open("if (" + access + " is { } " + local + ")");
            WriteJsonPropertyNonNull(writer, name, local, shape);
            _writer.Close();
            _writer.Line("else " + writer + ".WriteNull(" + name + ");");
            return;
        }
        WriteJsonPropertyNonNull(writer, name, access, shape);
    }

    private void WriteJsonPropertyNonNull(string writer, string name, string value, TypeShape shape)
    {
        switch (shape.Kind)
        {
            case ShapeKind.DateTime:
            case ShapeKind.DateTimeOffset:
            case ShapeKind.Guid:
                _writer.Line(writer + ".WriteString(" + name + ", " + value + ");");
                return;
            case ShapeKind.Boolean:
                _writer.Line(writer + ".WriteBoolean(" + name + ", " + value + ");");
                return;
            case ShapeKind.ByteArray:
                _writer.Line(writer + ".WriteBase64String(" + name + ", " + value + ");");
                return;
            case ShapeKind.Enum when !shape.Enum!.AsString:
                _writer.Line(writer + ".WriteNumber(" + name + ", (" + NumberWriterType(shape.Enum.Underlying) + ")" + value + ");");
                return;
            default:
                if (NumberWriterType(shape.Kind) is { } numberType)
                {
                    var cast = numberType == shape.TypeName ? "" : "(" + numberType + ")";
                    _writer.Line(writer + ".WriteNumber(" + name + ", " + Finite(shape.Kind, cast + value) + ");");
                    return;
                }
                _writer.Line(writer + ".WritePropertyName(" + name + ");");
                WriteJsonNonNull(writer, value, shape);
                return;
        }
    }

    private void WriteJsonValue(string writer, string access, TypeShape shape)
    {
        if (shape.IsNullableValueType || !shape.IsValueType)
        {
            var local = Fresh("v");
            _writer.Open("if (" + access + " is { } " + local + ")");
            WriteJsonNonNull(writer, local, shape);
            _writer.Close();
            _writer.Line("else " + writer + ".WriteNullValue();");
            return;
        }
        WriteJsonNonNull(writer, access, shape);
    }

    private void WriteJsonNonNull(string writer, string value, TypeShape shape)
    {
        switch (shape.Kind)
        {
            case ShapeKind.String:
            case ShapeKind.DateTime:
            case ShapeKind.DateTimeOffset:
            case ShapeKind.Guid:
                _writer.Line(writer + ".WriteStringValue(" + value + ");");
                return;
            case ShapeKind.Boolean:
                _writer.Line(writer + ".WriteBooleanValue(" + value + ");");
                return;
            case ShapeKind.ByteArray:
                _writer.Line(writer + ".WriteBase64StringValue(" + value + ");");
                return;
            case ShapeKind.Enum:
                WriteJsonEnum(writer, value, shape);
                return;
            case ShapeKind.Payload:
                _writer.Line(shape.TypeName + ".WriteJson(" + writer + ", " + value + ");");
                return;
            case ShapeKind.Array:
            case ShapeKind.List:
            case ShapeKind.IndexableSequence:
            {
                var index = Fresh("i");
                _writer.Line(writer + ".WriteStartArray();");
                _writer.Open("for (var " + index + " = 0; " + index + " < " + value + (shape.Kind == ShapeKind.Array ? ".Length" : ".Count")
                    + "; " + index + "++)");
                WriteJsonValue(writer, value + "[" + index + "]", shape.Element!);
                _writer.Close();
                _writer.Line(writer + ".WriteEndArray();");
                return;
            }
            case ShapeKind.Sequence:
            {
                var item = Fresh("e");
                _writer.Line(writer + ".WriteStartArray();");
                _writer.Open("foreach (var " + item + " in " + value + ")");
                WriteJsonValue(writer, item, shape.Element!);
                _writer.Close();
                _writer.Line(writer + ".WriteEndArray();");
                return;
            }
            case ShapeKind.Dictionary:
            {
                var pair = Fresh("kv");
                _writer.Line(writer + ".WriteStartObject();");
                _writer.Open("foreach (var " + pair + " in " + value + ")");
                _writer.Line(writer + ".WritePropertyName(" + pair + ".Key);");
                WriteJsonValue(writer, pair + ".Value", shape.Element!);
                _writer.Close();
                _writer.Line(writer + ".WriteEndObject();");
                return;
            }
            default:
                _writer.Line(writer + ".WriteNumberValue(" + Finite(shape.Kind, "(" + NumberWriterType(shape.Kind) + ")" + value) + ");");
                return;
        }
    }

    private void WriteJsonEnum(string writer, string value, TypeShape shape)
    {
        var enumShape = shape.Enum!;
        var number = writer + ".WriteNumberValue((" + NumberWriterType(enumShape.Underlying) + ")" + value + ");";
        if (!enumShape.AsString)
        {
            _writer.Line(number);
            return;
        }
        var name = Fresh("n");
        _writer.Line("if (__DrakkarEnumName(" + value + ") is { } " + name + ") " + writer + ".WriteStringValue(" + name + ");");
        if (!enumShape.IsFlags)
        {
            _writer.Line("else " + number);
            return;
        }
        // System.Text.Json writes a combination of defined flags as "A, B" and anything else as a number;
        // Enum.ToString formats exactly those cases as names and the rest as digits.
        var text = Fresh("f");
        _writer.Open("else");
        _writer.Line("var " + text + " = " + value + ".ToString();");
        _writer.Line("if (" + text + "[0] is (>= '0' and <= '9') or '-') " + number);
        _writer.Line("else " + writer + ".WriteStringValue(" + text + ");");
        _writer.Close();
    }

    // ---- JSON reader -------------------------------------------------------------------------------------------

    private void EmitReadJson()
    {
        _writer.Line("/// <summary>Reads one JSON object; <paramref name=\"reader\"/> is on its StartObject token and ends on its EndObject.</summary>");
        _writer.Open("public static " + New + _type + " ReadJson(ref " + JsonReader + " reader)");
        if (_model.IsAbstract)
        {
            _writer.Line("throw new global::System.NotSupportedException(" + DeclarationEmitter.Literal(
                "Payload '" + _displayName + "' is abstract and cannot be read from JSON.") + ");");
            _writer.Close();
            return;
        }
        _writer.Line("if (reader.TokenType != " + TokenType + ".StartObject) throw new " + JsonException + "("
            + DeclarationEmitter.Literal("Payload '" + _displayName + "': expected a JSON object but found ") + " + reader.TokenType + \".\");");
        var members = _model.Members;
        var defaults = new Dictionary<int, string>();
        foreach (var parameter in _model.ConstructorParameters)
        {
            if (parameter.MemberIndex >= 0 && parameter.DefaultValue is not null) defaults[parameter.MemberIndex] = parameter.DefaultValue;
        }
        for (var i = 0; i < members.Count; i++)
        {
            if (members[i].Binding == ReadBinding.None) continue;
            var initial = defaults.TryGetValue(i, out var value) ? value : DefaultOf(members[i].Shape);
            _writer.Line(members[i].Shape.DeclaredTypeName + " __m" + Index(i) + " = " + initial + ";");
            if (TracksPresence(members[i])) _writer.Line("var __has" + Index(i) + " = false;");
        }
        _writer.Open("while (true)");
        _writer.Line("__DrakkarRead(ref reader);");
        _writer.Line("if (reader.TokenType == " + TokenType + ".EndObject) break;");
        var first = true;
        for (var i = 0; i < members.Count; i++)
        {
            var member = members[i];
            if (member.Binding == ReadBinding.None) continue;
            _writer.Open((first ? "if" : "else if") + " (reader.ValueTextEquals(" + DeclarationEmitter.Utf8Literal(member.JsonName) + "))");
            first = false;
            _writer.Line("__DrakkarRead(ref reader);");
            ReadJsonValue("__m" + Index(i), member.Shape, member.JsonName);
            if (TracksPresence(member)) _writer.Line("__has" + Index(i) + " = true;");
            _writer.Close();
        }
        if (first)
        {
            _writer.Line("__DrakkarRead(ref reader);");
            _writer.Line("reader.Skip();");
        }
        else
        {
            _writer.Open("else");
            _writer.Line("__DrakkarRead(ref reader);");
            _writer.Line("reader.Skip();");
            _writer.Close();
        }
        _writer.Close();

        for (var i = 0; i < members.Count; i++)
        {
            if (!members[i].RequiredOnRead || members[i].Binding == ReadBinding.None) continue;
            _writer.Line("if (!__has" + Index(i) + ") throw new " + JsonException + "(" + DeclarationEmitter.Literal(
                "Payload '" + _displayName + "': required member '" + members[i].JsonName + "' is missing.") + ");");
        }

        var arguments = _model.ConstructorParameters.Select(p =>
            p.Name + ": " + (p.MemberIndex >= 0 ? Local(p.MemberIndex) : p.DefaultValue ?? "default!"));
        var construction = "var __result = new " + _type + "(" + string.Join(", ", arguments) + ")";
        var required = Enumerable.Range(0, members.Count).Where(i => members[i].Binding == ReadBinding.RequiredInitializer).ToList();
        if (required.Count == 0)
        {
            _writer.Line(construction + ";");
        }
        else
        {
            _writer.Line(construction);
            _writer.Line("{");
            foreach (var i in required) _writer.Line("    " + members[i].PropertyName + " = " + Local(i) + ",");
            _writer.Line("};");
        }
        for (var i = 0; i < members.Count; i++)
        {
            switch (members[i].Binding)
            {
                case ReadBinding.Setter:
                    _writer.Line("if (__has" + Index(i) + ") __result." + members[i].PropertyName + " = " + Local(i) + ";");
                    break;
                case ReadBinding.InitAccessor:
                    _writer.Line("if (__has" + Index(i) + ") __DrakkarInit" + Index(i) + "(__result, " + Local(i) + ");");
                    break;
            }
        }
        _writer.Line("return __result;");
        _writer.Close();
    }

    private static string DefaultOf(TypeShape shape) => shape.IsValueType || shape.AllowsNull ? "default" : "default!";

    /// <summary>A member's reading local as an argument: reference locals start as <c>default!</c>, so assert them.</summary>
    private string Local(int index) =>
        "__m" + Index(index) + (_model.Members[index].Shape is { IsValueType: false, AllowsNull: false } ? "!" : "");

    /// <summary>Whether reading needs to know the member was present: to reject its absence, or to leave a default alone.</summary>
    private static bool TracksPresence(PayloadMemberModel member) =>
        member.RequiredOnRead || member.Binding is ReadBinding.Setter or ReadBinding.InitAccessor;

    private void ReadJsonValue(string target, TypeShape shape, string member)
    {
        if (shape.AllowsNull)
        {
            _writer.Open("if (reader.TokenType == " + TokenType + ".Null)");
            _writer.Line(target + " = null;");
            _writer.Close();
            _writer.Open("else");
            ReadJsonNonNull(target, shape, member);
            _writer.Close();
            return;
        }
        ReadJsonNonNull(target, shape, member);
    }

    private string Mismatch(string member, string expected) =>
        "throw new " + JsonException + "(" + DeclarationEmitter.Literal("Payload '" + _displayName + "' member '" + member
            + "': expected " + expected + " but found ") + " + reader.TokenType + \".\")";

    private void ReadJsonNonNull(string target, TypeShape shape, string member)
    {
        switch (shape.Kind)
        {
            case ShapeKind.String:
                _writer.Line("if (reader.TokenType != " + TokenType + ".String) " + Mismatch(member, "a string") + ";");
                _writer.Line(target + " = reader.GetString()!;");
                return;
            case ShapeKind.Boolean:
                _writer.Line("if (reader.TokenType == " + TokenType + ".True) " + target + " = true;");
                _writer.Line("else if (reader.TokenType == " + TokenType + ".False) " + target + " = false;");
                _writer.Line("else " + Mismatch(member, "true or false") + ";");
                return;
            case ShapeKind.DateTime:
            case ShapeKind.DateTimeOffset:
            case ShapeKind.Guid:
            {
                var local = Fresh("t");
                var (method, expected) = shape.Kind switch
                {
                    ShapeKind.DateTime => ("TryGetDateTime", "an ISO 8601 date and time string"),
                    ShapeKind.DateTimeOffset => ("TryGetDateTimeOffset", "an ISO 8601 date and time string"),
                    _ => ("TryGetGuid", "a GUID string"),
                };
                _writer.Line("if (reader.TokenType != " + TokenType + ".String || !reader." + method + "(out var " + local + ")) "
                    + Mismatch(member, expected) + ";");
                _writer.Line(target + " = " + local + ";");
                return;
            }
            case ShapeKind.ByteArray:
            {
                var local = Fresh("b");
                _writer.Line("if (reader.TokenType != " + TokenType + ".String || !reader.TryGetBytesFromBase64(out var " + local + ")) "
                    + Mismatch(member, "a base64 string") + ";");
                _writer.Line(target + " = " + local + ";");
                return;
            }
            case ShapeKind.Enum:
                ReadJsonEnum(target, shape, member);
                return;
            case ShapeKind.Payload:
                _writer.Line("if (reader.TokenType != " + TokenType + ".StartObject) " + Mismatch(member, "an object") + ";");
                _writer.Line(target + " = " + shape.TypeName + ".ReadJson(ref reader);");
                return;
            case ShapeKind.Array:
            case ShapeKind.List:
            case ShapeKind.IndexableSequence:
            case ShapeKind.Sequence:
            {
                var element = shape.Element!;
                var list = Fresh("l");
                var item = Fresh("e");
                _writer.Line("if (reader.TokenType != " + TokenType + ".StartArray) " + Mismatch(member, "an array") + ";");
                _writer.Line("var " + list + " = new global::System.Collections.Generic.List<" + element.DeclaredTypeName + ">();");
                _writer.Open("while (true)");
                _writer.Line("__DrakkarRead(ref reader);");
                _writer.Line("if (reader.TokenType == " + TokenType + ".EndArray) break;");
                _writer.Line(element.DeclaredTypeName + " " + item + " = " + DefaultOf(element) + ";");
                ReadJsonValue(item, element, member);
                _writer.Line(list + ".Add(" + item + ");");
                _writer.Close();
                _writer.Line(target + " = " + list + (shape.Kind == ShapeKind.Array ? ".ToArray();" : ";"));
                return;
            }
            case ShapeKind.Dictionary:
            {
                var element = shape.Element!;
                var map = Fresh("d");
                var key = Fresh("k");
                var item = Fresh("e");
                _writer.Line("if (reader.TokenType != " + TokenType + ".StartObject) " + Mismatch(member, "an object") + ";");
                _writer.Line("var " + map + " = new global::System.Collections.Generic.Dictionary<string, " + element.DeclaredTypeName + ">();");
                _writer.Open("while (true)");
                _writer.Line("__DrakkarRead(ref reader);");
                _writer.Line("if (reader.TokenType == " + TokenType + ".EndObject) break;");
                _writer.Line("var " + key + " = reader.GetString()!;");
                _writer.Line("__DrakkarRead(ref reader);");
                _writer.Line(element.DeclaredTypeName + " " + item + " = " + DefaultOf(element) + ";");
                ReadJsonValue(item, element, member);
                _writer.Line(map + "[" + key + "] = " + item + ";");
                _writer.Close();
                _writer.Line(target + " = " + map + ";");
                return;
            }
            default:
            {
                var local = Fresh("n");
                _writer.Line("if (reader.TokenType != " + TokenType + ".Number || !reader.TryGet" + shape.Kind + "(out var " + local + ")) "
                    + Mismatch(member, "a number that fits " + shape.Kind) + ";");
                _writer.Line(target + " = " + local + ";");
                return;
            }
        }
    }

    private void ReadJsonEnum(string target, TypeShape shape, string member)
    {
        var enumShape = shape.Enum!;
        var number = Fresh("n");
        var numberRead = "reader.TokenType == " + TokenType + ".Number && reader.TryGet" + enumShape.Underlying + "(out var " + number + ")";
        if (!enumShape.AsString)
        {
            _writer.Line("if (!(" + numberRead + ")) " + Mismatch(member, "a number of " + shape.TypeName.Replace("global::", "")) + ";");
            _writer.Line(target + " = (" + shape.TypeName + ")" + number + ";");
            return;
        }
        _writer.Line("if (" + numberRead + ") " + target + " = (" + shape.TypeName + ")" + number + ";");
        _writer.Open("else if (reader.TokenType == " + TokenType + ".String)");
        _writer.Open(target + " = reader.GetString() switch");
        foreach (var enumMember in enumShape.Members)
        {
            _writer.Line(DeclarationEmitter.Literal(enumMember.JsonName) + " => " + shape.TypeName + "." + enumMember.Name + ",");
        }
        if (enumShape.IsFlags)
        {
            var text = Fresh("s");
            var parsed = Fresh("p");
            _writer.Line("{ } " + text + " when global::System.Enum.TryParse<" + shape.TypeName + ">(" + text + ", out var " + parsed + ") => " + parsed + ",");
        }
        _writer.Line("_ => throw new " + JsonException + "(" + DeclarationEmitter.Literal("Payload '" + _displayName + "' member '" + member
            + "': '") + " + reader.GetString() + " + DeclarationEmitter.Literal("' is not a " + shape.TypeName.Replace("global::", "") + " name.") + "),");
        _writer.Close(";");
        _writer.Close();
        _writer.Line("else " + Mismatch(member, "a string or number of " + shape.TypeName.Replace("global::", "")) + ";");
    }

    // ---- BSON writer -------------------------------------------------------------------------------------------

    private void EmitWriteBson()
    {
        _writer.Line("/// <summary>Writes <paramref name=\"value\"/> as one BSON document.</summary>");
        _writer.Open("public static " + "void WriteBson(global::Drakkar.BsonWriter writer, " + _type + " value)");
        _writer.Line("global::System.ArgumentNullException.ThrowIfNull(value);");
        _writer.Line("writer.WriteStartDocument();");
        foreach (var member in _model.Members)
        {
            WithIgnoreCondition(member, "value." + member.PropertyName, () =>
                WriteBsonValue(DeclarationEmitter.Literal(member.JsonName), "value." + member.PropertyName, member.Shape));
        }
        _writer.Line("writer.WriteEnd();");
        _writer.Close();
    }

    private void WriteBsonValue(string name, string access, TypeShape shape)
    {
        if (shape.IsNullableValueType || !shape.IsValueType)
        {
            var local = Fresh("v");
            _writer.Open("if (" + access + " is { } " + local + ")");
            WriteBsonNonNull(name, local, shape);
            _writer.Close();
            _writer.Line("else writer.WriteNull(" + name + ");");
            return;
        }
        WriteBsonNonNull(name, access, shape);
    }

    private void WriteBsonNonNull(string name, string value, TypeShape shape)
    {
        switch (shape.Kind)
        {
            case ShapeKind.String:
                _writer.Line("writer.WriteString(" + name + ", " + value + ");");
                return;
            case ShapeKind.Boolean:
                _writer.Line("writer.WriteBoolean(" + name + ", " + value + ");");
                return;
            case ShapeKind.Byte:
            case ShapeKind.SByte:
            case ShapeKind.Int16:
            case ShapeKind.UInt16:
            case ShapeKind.Int32:
                _writer.Line("writer.WriteInt32(" + name + ", " + value + ");");
                return;
            case ShapeKind.UInt32:
            case ShapeKind.Int64:
                _writer.Line("writer.WriteInt64(" + name + ", " + value + ");");
                return;
            case ShapeKind.UInt64:
            case ShapeKind.Decimal:
                _writer.Line("writer.WriteDecimal128(" + name + ", " + value + ");");
                return;
            case ShapeKind.Single:
            case ShapeKind.Double:
                _writer.Line("writer.WriteDouble(" + name + ", " + value + ");");
                return;
            case ShapeKind.DateTime:
                _writer.Line("writer.WriteDateTime(" + name + ", new global::System.DateTimeOffset(__DrakkarUtc(" + value + ")));");
                return;
            case ShapeKind.DateTimeOffset:
                _writer.Line("writer.WriteDateTime(" + name + ", " + value + ");");
                return;
            case ShapeKind.Guid:
                _writer.Line("writer.WriteGuid(" + name + ", " + value + ");");
                return;
            case ShapeKind.ByteArray:
                _writer.Line("writer.WriteBinary(" + name + ", " + value + ");");
                return;
            case ShapeKind.Enum:
            {
                var enumShape = shape.Enum!;
                if (enumShape.AsString)
                {
                    _writer.Line("writer.WriteString(" + name + ", __DrakkarEnumName(" + value + ") ?? " + value + ".ToString());");
                    return;
                }
                var method = enumShape.Underlying switch
                {
                    ShapeKind.UInt32 or ShapeKind.Int64 => "WriteInt64(" + name + ", (long)",
                    ShapeKind.UInt64 => "WriteDecimal128(" + name + ", (ulong)",
                    _ => "WriteInt32(" + name + ", (int)",
                };
                _writer.Line("writer." + method + value + ");");
                return;
            }
            case ShapeKind.Payload:
                _writer.Line("writer.WriteDocumentName(" + name + ");");
                _writer.Line(shape.TypeName + ".WriteBson(writer, " + value + ");");
                return;
            case ShapeKind.Array:
            case ShapeKind.List:
            case ShapeKind.IndexableSequence:
            case ShapeKind.Sequence:
            {
                var item = Fresh("e");
                _writer.Line("writer.WriteStartArray(" + name + ");");
                _writer.Open("foreach (var " + item + " in " + value + ")");
                WriteBsonValue("null", item, shape.Element!);
                _writer.Close();
                _writer.Line("writer.WriteEnd();");
                return;
            }
            case ShapeKind.Dictionary:
            {
                var pair = Fresh("kv");
                _writer.Line("writer.WriteStartDocument(" + name + ");");
                _writer.Open("foreach (var " + pair + " in " + value + ")");
                WriteBsonValue(pair + ".Key", pair + ".Value", shape.Element!);
                _writer.Close();
                _writer.Line("writer.WriteEnd();");
                return;
            }
            default:
                throw DeclarationEmitter.Unreachable(shape.Kind);
        }
    }

    // ---- PostgreSQL row ------------------------------------------------------------------------------------------

    private void EmitWriteRow()
    {
        _writer.Line("/// <summary>Writes one value per column, in <see cref=\"Columns\"/> order.</summary>");
        _writer.Open("public static " + "void WriteRow(global::Drakkar.IRowWriter writer, " + _type + " value)");
        foreach (var member in _model.Members)
        {
            var access = "value." + member.PropertyName;
            var shape = member.Shape;
            if (shape.IsJsonDocument)
            {
                _writer.Line("if (" + access + " is null) writer.Write<string>(null);");
                _writer.Open("else writer.WriteJson(" + access + ", static (json, state) =>");
                WriteJsonNonNull("json", "state", shape);
                _writer.Close(");");
                continue;
            }
            var nullable = shape.IsNullableValueType;
            switch (shape.Kind)
            {
                case ShapeKind.DateTime:
                    _writer.Line("writer.Write<global::System.DateTime" + (nullable ? "?" : "") + ">(__DrakkarUtc(" + access + "));");
                    break;
                case ShapeKind.DateTimeOffset:
                    _writer.Line("writer.Write<global::System.DateTimeOffset" + (nullable ? "?" : "") + ">(" + access
                        + (nullable ? "?" : "") + ".ToUniversalTime());");
                    break;
                case ShapeKind.Enum when shape.Enum!.AsString:
                    _writer.Line("writer.Write<string>(" + (nullable
                        ? access + ".HasValue ? __DrakkarEnumName(" + access + ".GetValueOrDefault()) ?? " + access + ".GetValueOrDefault().ToString() : null"
                        : "__DrakkarEnumName(" + access + ") ?? " + access + ".ToString()") + ");");
                    break;
                default:
                {
                    var kind = shape.Kind == ShapeKind.Enum ? shape.Enum!.Underlying : shape.Kind;
                    var clr = RowClrType(kind);
                    var type = clr + (nullable ? "?" : "");
                    var cast = clr == shape.TypeName && shape.Kind != ShapeKind.Enum ? "" : "(" + type + ")";
                    _writer.Line("writer.Write<" + type + ">(" + cast + access + ");");
                    break;
                }
            }
        }
        _writer.Close();
    }

    private void EmitHelpers()
    {
        _writer.Line();
        _writer.Open("private static void __DrakkarRead(ref " + JsonReader + " reader)");
        _writer.Line("if (!reader.Read()) throw new " + JsonException + "(" + DeclarationEmitter.Literal(
            "Payload '" + _displayName + "': the JSON ended early.") + ");");
        _writer.Close();

        var shapes = _model.Members.SelectMany(m => Flatten(m.Shape)).ToList();
        if (shapes.Any(s => s.Kind == ShapeKind.DateTime))
        {
            _writer.Line();
            _writer.Line("// BSON datetimes and timestamptz are instants: a local time converts, an unspecified one is taken as UTC.");
            _writer.Line("private static global::System.DateTime __DrakkarUtc(global::System.DateTime value) =>");
            _writer.Line("    value.Kind == global::System.DateTimeKind.Local ? value.ToUniversalTime() : global::System.DateTime.SpecifyKind(value, global::System.DateTimeKind.Utc);");
            if (_model.Members.Any(m => m.Shape is { Kind: ShapeKind.DateTime, IsNullableValueType: true }))
            {
                _writer.Line();
                _writer.Line("private static global::System.DateTime? __DrakkarUtc(global::System.DateTime? value) =>");
                _writer.Line("    value is { } instant ? __DrakkarUtc(instant) : null;");
            }
        }
        foreach (var enumShape in shapes.Where(s => s.Kind == ShapeKind.Enum && s.Enum!.AsString)
                     .GroupBy(s => s.TypeName).Select(g => g.First()).OrderBy(s => s.TypeName, System.StringComparer.Ordinal))
        {
            _writer.Line();
            _writer.Open("private static string? __DrakkarEnumName(" + enumShape.TypeName + " value) => value switch");
            foreach (var member in enumShape.Enum!.Members)
            {
                _writer.Line(enumShape.TypeName + "." + member.Name + " => " + DeclarationEmitter.Literal(member.JsonName) + ",");
            }
            _writer.Line("_ => null,");
            _writer.Close(";");
        }
        for (var i = 0; i < _model.Members.Count; i++)
        {
            var member = _model.Members[i];
            if (member.Binding != ReadBinding.InitAccessor) continue;
            var declaringType = _model.InitAccessors.First(a => a.MemberIndex == i).DeclaringType;
            _writer.Line();
            _writer.Line("// Sets an init-only member only when the JSON has it, so its initializer's default survives otherwise.");
            _writer.Line("[global::System.Runtime.CompilerServices.UnsafeAccessor(global::System.Runtime.CompilerServices.UnsafeAccessorKind.Method, Name = "
                + DeclarationEmitter.Literal("set_" + member.PropertyName.TrimStart('@')) + ")]");
            _writer.Line("private static extern void __DrakkarInit" + Index(i) + "(" + declaringType + " target, " + member.Shape.DeclaredTypeName + " value);");
        }
    }

    private static IEnumerable<TypeShape> Flatten(TypeShape shape)
    {
        for (var current = shape; current is not null; current = current.Element) yield return current;
    }

    private string Fresh(string prefix) => "__" + prefix + (_counter++).ToString(CultureInfo.InvariantCulture);

    private static string Index(int i) => i.ToString(CultureInfo.InvariantCulture);

    /// <summary>A floating-point number checked before it is written: JSON has no NaN or infinity.</summary>
    private string Finite(ShapeKind kind, string number) => kind is ShapeKind.Double or ShapeKind.Single
        ? "global::Drakkar.JsonNumbers.Finite(" + number + ", " + DeclarationEmitter.Literal(_jsonMember) + ")"
        : number;

    /// <summary>The <c>Utf8JsonWriter.WriteNumber</c> overload a number kind goes through (as System.Text.Json's converters do).</summary>
    private static string? NumberWriterType(ShapeKind kind) => kind switch
    {
        ShapeKind.Byte or ShapeKind.UInt16 or ShapeKind.UInt32 => "uint",
        ShapeKind.SByte or ShapeKind.Int16 or ShapeKind.Int32 => "int",
        ShapeKind.Int64 => "long",
        ShapeKind.UInt64 => "ulong",
        ShapeKind.Single => "float",
        ShapeKind.Double => "double",
        ShapeKind.Decimal => "decimal",
        _ => null,
    };

    /// <summary>The CLR type a row value is handed to <c>IRowWriter</c> as: the widest type its column holds exactly.</summary>
    private static string RowClrType(ShapeKind kind) => kind switch
    {
        ShapeKind.String => "string",
        ShapeKind.Boolean => "bool",
        ShapeKind.Byte or ShapeKind.SByte or ShapeKind.Int16 => "short",
        ShapeKind.UInt16 or ShapeKind.Int32 => "int",
        ShapeKind.UInt32 or ShapeKind.Int64 => "long",
        ShapeKind.UInt64 or ShapeKind.Decimal => "decimal",
        ShapeKind.Single => "float",
        ShapeKind.Double => "double",
        ShapeKind.Guid => "global::System.Guid",
        ShapeKind.ByteArray => "byte[]",
        _ => throw DeclarationEmitter.Unreachable(kind),
    };

    /// <summary>The PostgreSQL type of a member's column.</summary>
    public static string PostgresType(TypeShape shape) => shape.Kind switch
    {
        ShapeKind.String => "text",
        ShapeKind.Boolean => "bool",
        ShapeKind.Byte or ShapeKind.SByte or ShapeKind.Int16 => "int2",
        ShapeKind.UInt16 or ShapeKind.Int32 => "int4",
        ShapeKind.UInt32 or ShapeKind.Int64 => "int8",
        ShapeKind.UInt64 or ShapeKind.Decimal => "numeric",
        ShapeKind.Single => "float4",
        ShapeKind.Double => "float8",
        ShapeKind.DateTime or ShapeKind.DateTimeOffset => "timestamptz",
        ShapeKind.Guid => "uuid",
        ShapeKind.ByteArray => "bytea",
        ShapeKind.Enum => shape.Enum!.AsString ? "text" : PostgresType(shape with { Kind = shape.Enum.Underlying, Enum = null }),
        _ => "jsonb",
    };
}
