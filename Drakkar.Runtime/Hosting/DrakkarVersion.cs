using System.Reflection;

namespace Drakkar.Hosting;

/// <summary>The framework's version as released (<c>0.9.0</c>), for the worker metric, the debug UI, the meter and traces.</summary>
internal static class DrakkarVersion
{
    /// <summary>The informational version without its <c>+commit</c> suffix; the assembly version (<c>0.9.0.0</c>) when there is none.</summary>
    public static readonly string Text =
        typeof(DrakkarVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(DrakkarVersion).Assembly.GetName().Version?.ToString() ?? "0";
}
