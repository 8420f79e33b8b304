using System.Globalization;

namespace Drakkar.Configuration;

/// <summary>How one kind of scalar is read from text (file or environment) and written back as YAML.</summary>
internal abstract class ScalarType<TValue>
{
    /// <summary>What the value should be, for messages: "an integer", "true or false".</summary>
    public abstract string Expected { get; }

    /// <summary>The type column of docs/configuration.md: "int", "string or null".</summary>
    public abstract string DocName { get; }

    /// <summary>The values a closed set allows, for the docs' "allowed" column; null when any value of the type may be given.</summary>
    public virtual string? DocValues => null;

    public virtual bool AllowsNull => false;

    /// <summary>A value as the docs' default column shows it: <c>`4.0`</c>, <c>`""`</c>, <c>`null`</c>.</summary>
    public abstract string Show(TValue value);

    /// <summary>Parses the scalar's text, which is null only when <see cref="AllowsNull"/>.</summary>
    public abstract bool TryParse(string? text, out TValue value);

    public abstract void Write(ConfigYamlWriter writer, TValue value, bool fullyMasked);
}

internal static class ScalarTypes
{
    public static readonly ScalarType<string> Text = new TextType();
    public static readonly ScalarType<string?> OptionalText = new OptionalTextType();
    public static readonly ScalarType<int> Integer = new IntegerType();
    public static readonly ScalarType<int?> OptionalInteger = new OptionalIntegerType();
    public static readonly ScalarType<double> Number = new NumberType();
    public static readonly ScalarType<double?> OptionalNumber = new OptionalNumberType();
    public static readonly ScalarType<bool> TrueFalse = new BooleanType();

    private sealed class TextType : ScalarType<string>
    {
        public override string Expected => "a string";

        public override string DocName => "string";

        public override string Show(string value) => ShowText(value);

        public override bool TryParse(string? text, out string value)
        {
            value = text ?? "";
            return text is not null;
        }

        public override void Write(ConfigYamlWriter writer, string value, bool fullyMasked) => writer.String(value, fullyMasked);
    }

    private sealed class OptionalTextType : ScalarType<string?>
    {
        public override string Expected => "a string or null";

        public override string DocName => "string or null";

        public override string Show(string? value) => value is null ? "`null`" : ShowText(value);

        public override bool AllowsNull => true;

        public override bool TryParse(string? text, out string? value)
        {
            value = text;
            return true;
        }

        public override void Write(ConfigYamlWriter writer, string? value, bool fullyMasked)
        {
            if (value is null) writer.Null();
            else writer.String(value, fullyMasked);
        }
    }

    private sealed class IntegerType : ScalarType<int>
    {
        public override string Expected => "a whole number";

        public override string DocName => "int";

        public override string Show(int value) => $"`{value.ToString(CultureInfo.InvariantCulture)}`";

        public override bool TryParse(string? text, out int value) => ParseInteger(text, out value);

        public override void Write(ConfigYamlWriter writer, int value, bool fullyMasked) =>
            writer.Plain(value.ToString(CultureInfo.InvariantCulture));
    }

    private sealed class OptionalIntegerType : ScalarType<int?>
    {
        public override string Expected => "a whole number or null";

        public override string DocName => "int or null";

        public override string Show(int? value) => value is { } number ? $"`{number.ToString(CultureInfo.InvariantCulture)}`" : "`null`";

        public override bool AllowsNull => true;

        public override bool TryParse(string? text, out int? value)
        {
            value = null;
            if (text is null) return true;
            if (!ParseInteger(text, out var parsed)) return false;
            value = parsed;
            return true;
        }

        public override void Write(ConfigYamlWriter writer, int? value, bool fullyMasked)
        {
            if (value is { } number) writer.Plain(number.ToString(CultureInfo.InvariantCulture));
            else writer.Null();
        }
    }

    private sealed class NumberType : ScalarType<double>
    {
        public override string Expected => "a number";

        public override string DocName => "number";

        public override string Show(double value) => $"`{FormatNumber(value)}`";

        public override bool TryParse(string? text, out double value) => ParseNumber(text, out value);

        public override void Write(ConfigYamlWriter writer, double value, bool fullyMasked) => writer.Plain(FormatNumber(value));
    }

    private sealed class OptionalNumberType : ScalarType<double?>
    {
        public override string Expected => "a number or null";

        public override string DocName => "number or null";

        public override string Show(double? value) => value is { } number ? $"`{FormatNumber(number)}`" : "`null`";

        public override bool AllowsNull => true;

        public override bool TryParse(string? text, out double? value)
        {
            value = null;
            if (text is null) return true;
            if (!ParseNumber(text, out var parsed)) return false;
            value = parsed;
            return true;
        }

        public override void Write(ConfigYamlWriter writer, double? value, bool fullyMasked)
        {
            if (value is { } number) writer.Plain(FormatNumber(number));
            else writer.Null();
        }
    }

    private sealed class BooleanType : ScalarType<bool>
    {
        public override string Expected => "true or false";

        public override string DocName => "bool";

        public override string Show(bool value) => value ? "`true`" : "`false`";

        public override bool TryParse(string? text, out bool value)
        {
            // YAML 1.1 spellings (what PyYAML, and so Drakkar, accepts) plus 1/0, which environment variables often use.
            switch (text?.Trim().ToLowerInvariant())
            {
                case "true" or "yes" or "on" or "1":
                    value = true;
                    return true;
                case "false" or "no" or "off" or "0":
                    value = false;
                    return true;
                default:
                    value = false;
                    return false;
            }
        }

        public override void Write(ConfigYamlWriter writer, bool value, bool fullyMasked) => writer.Plain(value ? "true" : "false");
    }

    /// <summary>Accepts the listed names case-insensitively, writes the first name given for each value.</summary>
    public sealed class Choice<TEnum> : ScalarType<TEnum>
        where TEnum : struct, Enum
    {
        private readonly (string Name, TEnum Value)[] _names;

        public Choice(params (string Name, TEnum Value)[] names) => _names = names;

        public override string Expected => "one of " + string.Join(", ", _names.Select(n => n.Name));

        public override string DocName => "enum";

        public override string DocValues => string.Join(", ", _names.Select(n => $"`{n.Name}`"));

        public override string Show(TEnum value) => $"`{Name(value)}`";

        public override bool TryParse(string? text, out TEnum value)
        {
            foreach (var (name, candidate) in _names)
            {
                if (string.Equals(name, text?.Trim(), StringComparison.OrdinalIgnoreCase))
                {
                    value = candidate;
                    return true;
                }
            }
            value = default;
            return false;
        }

        public override void Write(ConfigYamlWriter writer, TEnum value, bool fullyMasked) => writer.String(Name(value));

        private string Name(TEnum value)
        {
            foreach (var (name, candidate) in _names)
            {
                if (EqualityComparer<TEnum>.Default.Equals(candidate, value)) return name;
            }
            return value.ToString().ToLowerInvariant();
        }
    }

    /// <summary>A string in the docs: <c>`""`</c> when empty, so an empty default is visible.</summary>
    private static string ShowText(string value) => value.Length == 0 ? "`\"\"`" : $"`{value}`";

    private static bool ParseInteger(string? text, out int value)
    {
        // YAML allows digit separators (300_000), as Drakkar's own configuration examples use.
        var cleaned = text?.Trim().Replace("_", "", StringComparison.Ordinal);
        return int.TryParse(cleaned, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
    }

    private static bool ParseNumber(string? text, out double value)
    {
        var cleaned = text?.Trim().Replace("_", "", StringComparison.Ordinal);
        return double.TryParse(cleaned, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);
    }

    private static string FormatNumber(double value)
    {
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        // Keep a decimal point so the value reads as a float, matching the key's type.
        return text.Contains('.', StringComparison.Ordinal) || text.Contains('E', StringComparison.Ordinal) ? text : text + ".0";
    }
}
