using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Drakkar.Configuration;

/// <summary>
/// Turns YAML text into a <see cref="ConfigNode"/> tree straight from YamlDotNet's parser events (no reflection-based
/// deserializer, so it stays trim- and AOT-safe). Handles anchors, aliases and merge keys (<c>&lt;&lt;: *base</c>,
/// explicit keys win over merged ones) and expands <c>${VAR}</c> in every scalar value.
/// </summary>
internal sealed class YamlTreeReader
{
    private readonly IParser _parser;
    private readonly IReadOnlyDictionary<string, string?> _environment;
    private readonly List<ConfigProblem> _problems;
    private readonly Dictionary<string, ConfigNode> _anchors = new(StringComparer.Ordinal);

    /// <summary>Set when reading a variable's inline value: every node is stamped with it and nothing is expanded.</summary>
    private readonly string? _override;

    private YamlTreeReader(
        string yaml, IReadOnlyDictionary<string, string?> environment, List<ConfigProblem> problems, string? overrideSource = null)
    {
        _parser = new Parser(new StringReader(yaml));
        _environment = environment;
        _problems = problems;
        _override = overrideSource;
    }

    /// <summary>Reads the document's root mapping; null when the text holds no document at all.</summary>
    /// <exception cref="ConfigException">The text is not valid YAML, or its root is not a mapping.</exception>
    public static MapNode? Read(
        string yaml, IReadOnlyDictionary<string, string?> environment, List<ConfigProblem> problems, string? origin)
    {
        var reader = new YamlTreeReader(yaml, environment, problems);
        try
        {
            return reader.ReadStream(origin);
        }
        catch (YamlException exception)
        {
            // YamlDotNet's own message ("While parsing a block mapping, did not find expected key") is already about
            // the text; the position is what a person needs to find it.
            var problem = new ConfigProblem(
                "", $"not valid YAML: {exception.Message}", $"line {exception.Start.Line}, column {exception.Start.Column}");
            throw new ConfigException([problem], origin);
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner throws this instead of a YamlException for some truncated input (an unclosed
            // flow list running into the end of the text), so it is a syntax error all the same.
            var near = reader._parser.Current is { } current ? $"near line {current.Start.Line}" : null;
            var problem = new ConfigProblem("", "not valid YAML: the text ends inside an unclosed list, mapping or quote", near);
            throw new ConfigException([problem], origin);
        }
    }

    /// <summary>Reads an environment variable's inline mapping or list (YAML flow or JSON), taken literally.</summary>
    public static ConfigNode? ReadInline(string text, string overrideSource, out string? error)
    {
        error = null;
        try
        {
            var reader = new YamlTreeReader(text, EmptyEnvironment, [], overrideSource);
            reader._parser.Consume<StreamStart>();
            reader._parser.Consume<DocumentStart>();
            return reader.ReadNode("");
        }
        catch (YamlException exception)
        {
            error = exception.Message;
            return null;
        }
    }

    private static readonly IReadOnlyDictionary<string, string?> EmptyEnvironment = new Dictionary<string, string?>();

    private MapNode? ReadStream(string? origin)
    {
        _parser.Consume<StreamStart>();
        if (_parser.TryConsume<StreamEnd>(out _)) return null;

        _parser.Consume<DocumentStart>();
        var root = ReadNode("");
        _parser.Consume<DocumentEnd>();
        if (!_parser.TryConsume<StreamEnd>(out _))
            throw new ConfigException([new ConfigProblem("", "the file holds more than one YAML document; keep one")], origin);

        return root switch
        {
            MapNode map => map,
            ScalarNode { IsNull: true } => null,
            _ => throw new ConfigException(
                [new ConfigProblem("", $"the top level must be a mapping of sections (kafka, executor, …), got {root.Describe()}", root.Source)],
                origin),
        };
    }

    private ConfigNode ReadNode(string path)
    {
        if (_parser.TryConsume<AnchorAlias>(out var alias))
        {
            if (!_anchors.TryGetValue(alias.Value.Value, out var target))
                throw new YamlException(alias.Start, alias.End, $"unknown alias '*{alias.Value.Value}'");
            // A copy, because environment overrides later mutate mappings in place and must not leak into the anchor.
            return Clone(target);
        }

        ConfigNode node;
        AnchorName anchor;
        if (_parser.TryConsume<Scalar>(out var scalar))
        {
            node = ReadScalar(scalar, path);
            anchor = scalar.Anchor;
        }
        else if (_parser.TryConsume<SequenceStart>(out var sequenceStart))
        {
            node = ReadSequence(sequenceStart, path);
            anchor = sequenceStart.Anchor;
        }
        else
        {
            var mappingStart = _parser.Consume<MappingStart>();
            node = ReadMapping(mappingStart, path);
            anchor = mappingStart.Anchor;
        }

        if (!anchor.IsEmpty) _anchors[anchor.Value] = node;
        return node;
    }

    private ScalarNode ReadScalar(Scalar scalar, string path)
    {
        if (_override is not null) return new ScalarNode(IsNull(scalar) ? null : scalar.Value) { Override = _override };

        var line = (int)scalar.Start.Line;
        if (IsNull(scalar)) return new ScalarNode(null) { Line = line };

        var expanded = VariableExpander.Expand(scalar.Value, _environment, out var error);
        if (error is not null)
        {
            _problems.Add(new ConfigProblem(path, error, $"line {line}"));
            return new ScalarNode(scalar.Value) { Line = line, Failed = true };
        }
        return new ScalarNode(expanded) { Line = line };
    }

    private static bool IsNull(Scalar scalar)
    {
        if (scalar.Tag.IsEmpty)
            return scalar.Style == ScalarStyle.Plain && (scalar.Value.Length == 0 || ScalarNode.IsNullSpelling(scalar.Value));
        return scalar.Tag.Value is "tag:yaml.org,2002:null";
    }

    private SequenceNode ReadSequence(SequenceStart start, string path)
    {
        var sequence = new SequenceNode { Line = LineOf(start), Override = _override };
        while (!_parser.TryConsume<SequenceEnd>(out _))
            sequence.Items.Add(ReadNode($"{path}[{sequence.Items.Count}]"));
        return sequence;
    }

    private MapNode ReadMapping(MappingStart start, string path)
    {
        var map = new MapNode { Line = LineOf(start), Override = _override };
        List<MapNode>? merged = null;
        while (!_parser.TryConsume<MappingEnd>(out _))
        {
            if (!_parser.TryConsume<Scalar>(out var key))
            {
                var current = _parser.Current!;
                throw new YamlException(current.Start, current.End, "keys must be plain scalars, not lists or mappings");
            }

            if (key.Value == "<<" && key.Style == ScalarStyle.Plain)
            {
                merged ??= [];
                CollectMergeSources(ReadNode(path), merged, key);
                continue;
            }

            var childPath = path.Length == 0 ? key.Value : $"{path}.{key.Value}";
            var value = ReadNode(childPath);
            var existing = map.Entries.FindIndex(e => e.Key == key.Value);
            if (existing >= 0)
            {
                _problems.Add(new ConfigProblem(childPath, "duplicate key (the later value would silently win)", $"line {key.Start.Line}"));
                map.Entries[existing].Value = value;
                continue;
            }
            map.Entries.Add(new MapEntry(key.Value, value, keyFromOverride: false));
        }

        if (merged is not null)
            foreach (var source in merged)
                foreach (var entry in source.Entries)
                    if (!map.Entries.Exists(e => e.Key == entry.Key))
                        map.Entries.Add(new MapEntry(entry.Key, Clone(entry.Value), entry.KeyFromOverride));
        return map;
    }

    private int LineOf(ParsingEvent parsingEvent) => _override is null ? (int)parsingEvent.Start.Line : 0;

    private static void CollectMergeSources(ConfigNode value, List<MapNode> into, Scalar key)
    {
        switch (value)
        {
            case MapNode map:
                into.Add(map);
                break;
            case SequenceNode sequence when sequence.Items.TrueForAll(item => item is MapNode):
                // YAML's merge rule: earlier mappings in the list take precedence over later ones.
                foreach (var item in sequence.Items) into.Add((MapNode)item);
                break;
            default:
                throw new YamlException(key.Start, key.End, "a merge key '<<' needs a mapping or a list of mappings");
        }
    }

    private static ConfigNode Clone(ConfigNode node)
    {
        switch (node)
        {
            case MapNode map:
                var mapCopy = new MapNode { Line = map.Line, Override = map.Override };
                foreach (var entry in map.Entries)
                    mapCopy.Entries.Add(new MapEntry(entry.Key, Clone(entry.Value), entry.KeyFromOverride));
                return mapCopy;
            case SequenceNode sequence:
                var sequenceCopy = new SequenceNode { Line = sequence.Line, Override = sequence.Override };
                foreach (var item in sequence.Items) sequenceCopy.Items.Add(Clone(item));
                return sequenceCopy;
            default:
                return node;
        }
    }
}
