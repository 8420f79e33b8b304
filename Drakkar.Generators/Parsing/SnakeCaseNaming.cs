using System.Globalization;
using System.Text;

namespace Drakkar.Generators.Parsing;

/// <summary>
/// Member names to snake_case exactly as <c>JsonNamingPolicy.SnakeCaseLower</c> does, so generated JSON, BSON field
/// names and column names agree with System.Text.Json byte for byte.
/// </summary>
internal static class SnakeCaseNaming
{
    private enum State
    {
        NotStarted,
        UppercaseLetter,
        LowercaseLetterOrDigit,
        SpaceSeparator,
    }

    public static string Convert(string name)
    {
        var builder = new StringBuilder(name.Length + 8);
        var state = State.NotStarted;
        for (var i = 0; i < name.Length; i++)
        {
            var current = name[i];
            switch (CharUnicodeInfo.GetUnicodeCategory(current))
            {
                case UnicodeCategory.UppercaseLetter:
                    // A run of capitals stays one word except its last letter when a lowercase letter follows it:
                    // "XMLReader" -> "xml_reader".
                    if (state is State.LowercaseLetterOrDigit or State.SpaceSeparator
                        || (state == State.UppercaseLetter && i + 1 < name.Length && char.IsLower(name[i + 1])))
                    {
                        builder.Append('_');
                    }
                    builder.Append(char.ToLowerInvariant(current));
                    state = State.UppercaseLetter;
                    break;
                case UnicodeCategory.LowercaseLetter:
                case UnicodeCategory.DecimalDigitNumber:
                    if (state == State.SpaceSeparator) builder.Append('_');
                    builder.Append(current);
                    state = State.LowercaseLetterOrDigit;
                    break;
                case UnicodeCategory.SpaceSeparator:
                    if (state != State.NotStarted) state = State.SpaceSeparator;
                    break;
                default:
                    builder.Append(current);
                    state = State.NotStarted;
                    break;
            }
        }
        return builder.ToString();
    }
}
