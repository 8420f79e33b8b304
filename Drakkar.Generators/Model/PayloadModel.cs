namespace Drakkar.Generators.Model;

/// <summary>What a payload member's value is, as far as the writers and the reader care.</summary>
internal enum ShapeKind
{
    String,
    Boolean,
    Byte,
    SByte,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Single,
    Double,
    Decimal,
    DateTime,
    DateTimeOffset,
    Guid,
    ByteArray,
    Enum,
    /// <summary>Another <c>[Payload]</c> type: written through its own generated members.</summary>
    Payload,
    /// <summary><c>T[]</c>.</summary>
    Array,
    /// <summary><c>List&lt;T&gt;</c> (indexable without an enumerator).</summary>
    List,
    /// <summary><c>IReadOnlyList&lt;T&gt;</c> or <c>IList&lt;T&gt;</c>: indexable, so written without an enumerator; read back as a list.</summary>
    IndexableSequence,
    /// <summary><c>IEnumerable&lt;T&gt;</c>, <c>IReadOnlyCollection&lt;T&gt;</c>, <c>ICollection&lt;T&gt;</c>: read back as a list.</summary>
    Sequence,
    /// <summary>A string-keyed dictionary (concrete or interface): read back as a <c>Dictionary</c>.</summary>
    Dictionary,
}

/// <summary>
/// The shape of one value. <paramref name="TypeName"/> is the fully qualified, non-nullable type
/// (the underlying type for a nullable value type).
/// </summary>
internal sealed record TypeShape(
    ShapeKind Kind,
    string TypeName,
    bool IsNullableValueType,
    bool AllowsNull,
    TypeShape? Element,
    EnumShape? Enum)
{
    public bool IsValueType => Kind is not (ShapeKind.String or ShapeKind.ByteArray or ShapeKind.Payload or ShapeKind.Array
        or ShapeKind.List or ShapeKind.IndexableSequence or ShapeKind.Sequence or ShapeKind.Dictionary);

    public bool IsJsonDocument => Kind is ShapeKind.Payload or ShapeKind.Array or ShapeKind.List or ShapeKind.IndexableSequence
        or ShapeKind.Sequence or ShapeKind.Dictionary;

    /// <summary>The declared type as written in a local or parameter, nullable where the value may be null.</summary>
    public string DeclaredTypeName => IsNullableValueType || (AllowsNull && !IsValueType) ? TypeName + "?" : TypeName;
}

/// <summary>An enum: numeric (System.Text.Json's default) or by name (<c>JsonStringEnumConverter</c>).</summary>
internal sealed record EnumShape(ShapeKind Underlying, bool AsString, bool IsFlags, EquatableArray<EnumMemberInfo> Members);

internal sealed record EnumMemberInfo(string Name, string JsonName);

/// <summary>How <c>ReadJson</c> gets a member's value into the object.</summary>
internal enum ReadBinding
{
    /// <summary>Read-only and not a constructor parameter: skipped when reading.</summary>
    None,
    Constructor,
    Setter,
    /// <summary>An <c>init</c> accessor set only when the member is present, so property initializers survive.</summary>
    InitAccessor,
    /// <summary>A <c>required</c> member: always in the object initializer.</summary>
    RequiredInitializer,
}

/// <summary>When a member is left out of the JSON and BSON documents.</summary>
internal enum IgnoreCondition
{
    Never,
    WhenWritingNull,
    WhenWritingDefault,
}

/// <summary>A serialized member; <paramref name="PropertyName"/> is the C# identifier (escaped when a keyword).</summary>
internal sealed record PayloadMemberModel(
    string PropertyName,
    string JsonName,
    TypeShape Shape,
    ReadBinding Binding,
    bool RequiredOnRead,
    IgnoreCondition Ignore);

/// <summary>A constructor parameter of the reading constructor; <paramref name="MemberIndex"/> is -1 when no member binds to it.</summary>
internal sealed record ConstructorParameterModel(string Name, string TypeName, int MemberIndex, string? DefaultValue);

/// <summary>A member's <c>init</c> accessor, reached through an <c>UnsafeAccessor</c> declared on <paramref name="DeclaringType"/>.</summary>
internal sealed record InitAccessorModel(int MemberIndex, string DeclaringType);

internal sealed record PayloadModel(
    TypeDeclarationInfo Declaration,
    bool Emit,
    bool IsAbstract,
    bool HidesBasePayload,
    EquatableArray<PayloadMemberModel> Members,
    EquatableArray<ConstructorParameterModel> ConstructorParameters,
    EquatableArray<InitAccessorModel> InitAccessors,
    bool HasErrors,
    EquatableArray<DiagnosticInfo> Diagnostics);
