using System.Text.Encodings.Web;
using System.Text.Json;

namespace Drakkar.Serialization;

/// <summary>
/// How Drakkar writes the JSON its sinks, DLQ records and reports carry: non-ASCII text stays UTF-8 and only what JSON
/// requires is escaped (quote, backslash, control characters), as Python Drakkar's pydantic output does.
/// System.Text.Json's default encoder also escapes every non-ASCII character (<c>\u00E9</c>; Cyrillic six times its
/// size) and the HTML-sensitive ones (<c>'</c>, <c>"</c> as <c>\u0022</c>, <c>&lt;</c>, <c>&amp;</c>, <c>+</c>),
/// which guards JSON pasted into an HTML page; these documents go to machines and files, not into pages.
/// </summary>
internal static class JsonOutput
{
    public static readonly JsonWriterOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static readonly JsonWriterOptions Indented = Compact with { Indented = true };
}
