using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Drakkar.Configuration;

/// <summary>
/// Writes the effective configuration as YAML through YamlDotNet's event emitter (no serializer, AOT-safe).
/// Every string goes through <see cref="SecretMasker.Mask"/>; strings are always double-quoted so values such as
/// <c>"123"</c> or <c>"true"</c> keep their type when the text is loaded again, and <c>${</c> is written as
/// <c>$${</c> so the loader does not expand it.
/// </summary>
internal sealed class ConfigYamlWriter
{
    private readonly Emitter _emitter;

    public ConfigYamlWriter(TextWriter output)
    {
        _emitter = new Emitter(output, new EmitterSettings(bestIndent: 2, bestWidth: int.MaxValue, isCanonical: false, maxSimpleKeyLength: 1024));
        _emitter.Emit(new StreamStart());
        _emitter.Emit(new DocumentStart(null, null, isImplicit: true));
    }

    public void Finish()
    {
        _emitter.Emit(new DocumentEnd(isImplicit: true));
        _emitter.Emit(new StreamEnd());
    }

    public void Key(string key) => _emitter.Emit(new Scalar(key));

    public void Plain(string text) => _emitter.Emit(new Scalar(null, null, text, ScalarStyle.Plain, true, false));

    public void Null() => Plain("null");

    /// <summary>Writes a string; <paramref name="fullyMasked"/> hides the whole value (a token, a password header).</summary>
    public void String(string value, bool fullyMasked = false)
    {
        var shown = fullyMasked && value.Length > 0 ? SecretMasker.Masked : SecretMasker.Mask(value);
        shown = shown.Replace("${", "$${", StringComparison.Ordinal);
        _emitter.Emit(new Scalar(null, null, shown, ScalarStyle.DoubleQuoted, false, true));
    }

    /// <summary>Starts a mapping; an empty one is written inline as <c>{}</c>.</summary>
    public void BeginMap(bool empty = false) =>
        _emitter.Emit(new MappingStart(null, null, true, empty ? MappingStyle.Flow : MappingStyle.Block));

    public void EndMap() => _emitter.Emit(new MappingEnd());

    /// <summary>Starts a list; an empty one is written inline as <c>[]</c>.</summary>
    public void BeginList(bool empty = false) =>
        _emitter.Emit(new SequenceStart(null, null, true, empty ? SequenceStyle.Flow : SequenceStyle.Block));

    public void EndList() => _emitter.Emit(new SequenceEnd());

    public void StringMap(IReadOnlyDictionary<string, string> map)
    {
        BeginMap(map.Count == 0);
        StringEntries(map);
        EndMap();
    }

    /// <summary>The pairs of <paramref name="map"/>, sorted by key, inside a map the caller opened.</summary>
    public void StringEntries(IReadOnlyDictionary<string, string> map)
    {
        foreach (var (key, value) in map.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            Key(key);
            String(value, SecretMasker.IsSecretName(key));
        }
    }
}
