using System.Reflection;
using System.Text;
using Drakkar.Configuration;

namespace Drakkar.Runtime.Tests.Configuration;

/// <summary>
/// The config classes and DrakkarConfigSchema declare the same keys: every public settable property of DrakkarConfig
/// and the classes under it is bound by a schema key of its snake_case name, and every schema key names a property.
/// </summary>
public sealed class ConfigSchemaCoverageTests
{
    // Properties the schema deliberately has no row for. sinks.custom holds plugin settings, opaque to Drakkar and
    // described in prose (CustomSinksField binds them as a free-form map).
    private static readonly HashSet<string> NotInSchema = ["sinks.custom.<kind>.<name>.settings"];

    [Fact]
    public void Every_config_property_has_a_schema_key_and_every_schema_key_a_property()
    {
        var properties = new HashSet<string>(PropertyPaths(typeof(DrakkarConfig), ""), StringComparer.Ordinal);
        var keys = new HashSet<string>(ConfigDocs.Keys().Select(key => key.Path), StringComparer.Ordinal);

        var unbound = properties.Except(keys).Except(NotInSchema).Order().ToList();
        var unmapped = keys.Except(properties).Order().ToList();
        var staleExclusions = NotInSchema.Except(properties).ToList();

        Assert.True(unbound.Count == 0, $"config properties no schema key binds: {string.Join(", ", unbound)}");
        Assert.True(unmapped.Count == 0, $"schema keys with no config property of that name: {string.Join(", ", unmapped)}");
        Assert.True(staleExclusions.Count == 0, $"excluded paths that are no longer properties: {string.Join(", ", staleExclusions)}");
    }

    /// <summary>The dotted snake_case path of every public settable property, sections and instances walked into.</summary>
    private static IEnumerable<string> PropertyPaths(Type type, string prefix)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true }))
        {
            var path = prefix + SnakeCase(property.Name);
            var children = property.PropertyType switch
            {
                var section when IsConfigClass(section) => PropertyPaths(section, path + "."),
                { IsGenericType: true } map when map.GetGenericTypeDefinition() == typeof(Dictionary<,>) =>
                    Instances(map.GetGenericArguments()[1], path + ".<name>."),
                _ => null,
            };
            if (children is null) yield return path;
            else foreach (var child in children) yield return child;
        }
    }

    /// <summary>Named instances (<c>sinks.kafka.&lt;name&gt;</c>); <c>sinks.custom</c> has a kind level above them.</summary>
    private static IEnumerable<string>? Instances(Type value, string prefix) =>
        IsConfigClass(value) ? PropertyPaths(value, prefix)
        : value.IsGenericType && value.GetGenericTypeDefinition() == typeof(Dictionary<,>) && IsConfigClass(value.GetGenericArguments()[1])
            ? PropertyPaths(value.GetGenericArguments()[1], prefix.Replace(".<name>.", ".<kind>.<name>.", StringComparison.Ordinal))
            : null;

    private static bool IsConfigClass(Type type) => type.IsClass && type.Namespace == typeof(DrakkarConfig).Namespace;

    private static string SnakeCase(string name)
    {
        var text = new StringBuilder();
        foreach (var c in name)
        {
            if (char.IsUpper(c) && text.Length > 0) text.Append('_');
            text.Append(char.ToLowerInvariant(c));
        }
        return text.ToString();
    }
}
