using System.ComponentModel;
using System.Globalization;

namespace Drakkar;

/// <summary>
/// Called by the JSON writers the generator makes for <c>[Payload]</c> types: JSON has no NaN or infinite number, and
/// System.Text.Json's own refusal talks about <c>JsonSerializer</c> options that do not apply here. This names the
/// member instead. The <see cref="ArgumentException"/> makes the payload one with no JSON form
/// (<see cref="PayloadData.IsUnwritable"/>): its sink fails it alone and the DLQ keeps it as text.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class JsonNumbers
{
    public static double Finite(double value, string member) =>
        double.IsFinite(value) ? value : throw NotFinite(value.ToString(CultureInfo.InvariantCulture), member);

    public static float Finite(float value, string member) =>
        float.IsFinite(value) ? value : throw NotFinite(value.ToString(CultureInfo.InvariantCulture), member);

    private static ArgumentException NotFinite(string value, string member) =>
        new($"{member} is {value}, which JSON cannot carry (it has no NaN or infinite numbers)");
}
