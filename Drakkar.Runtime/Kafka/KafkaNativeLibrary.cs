using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Drakkar.Kafka;

/// <summary>
/// Makes Confluent.Kafka and the embedded broker (<see cref="Embedded.MockClusterNative"/>) bind one and the same
/// native librdkafka, including under Native AOT.
/// </summary>
/// <remarks>
/// <para>
/// The librdkafka.redist package ships three Linux x64 builds: <c>librdkafka.so</c> (needs <c>libsasl2.so.3</c>,
/// which Debian 12 lacks: it has <c>libsasl2.so.2</c>), <c>centos8-librdkafka.so</c> (self-contained: only
/// libc/libm/libdl/libpthread/librt) and <c>alpine-librdkafka.so</c> (musl). Left to its own probing, Confluent's
/// <c>DllImport("librdkafka")</c> would, after the package's <c>librdkafka.so</c> fails to load, fall through to
/// the system search and pick up any <c>librdkafka.so</c> the OS has (Debian's <c>librdkafka-dev</c> links it to
/// librdkafka 2.0.2, too old for Confluent.Kafka 2.16), and only then to <c>centos8-librdkafka.so</c>.
/// </para>
/// <para>
/// So a <see cref="NativeLibrary.SetDllImportResolver"/> on the Confluent.Kafka assembly and on this one maps
/// every librdkafka name either imports (<c>librdkafka</c>, <c>centos8-librdkafka.so</c>,
/// <c>alpine-librdkafka.so</c>) to one handle: a librdkafka already mapped into the process if there is one (a
/// host that used Confluent.Kafka before Drakkar), otherwise the first package build that loads, looked up beside
/// the binary (Native AOT publish), in <c>runtimes/&lt;rid&gt;/native/</c> (JIT build output) and in the host's
/// native search directories; only when none loads does the default probing decide. <c>Library.Load(path)</c> is
/// not used: it dlopens through "libdl", which glibc 2.34+ systems no longer ship as an unversioned library.
/// </para>
/// </remarks>
internal static class KafkaNativeLibrary
{
    /// <summary>The name both Confluent.Kafka's default NativeMethods class and the embedded broker import.</summary>
    public const string ImportName = "librdkafka";

    // The package builds in the order Confluent.Kafka itself prefers them.
    private static readonly string[] PackageFiles = ["librdkafka.so", "centos8-librdkafka.so", "alpine-librdkafka.so"];

    private static readonly Lock Gate = new();
    private static bool s_resolversInstalled;
    private static nint s_handle;
    private static string? s_path;

    /// <summary>The file the process's librdkafka was loaded from, once resolved (null before, or off Linux).</summary>
    public static string? LoadedPath
    {
        get
        {
            lock (Gate) return s_path;
        }
    }

    /// <summary>
    /// Installs the resolvers (once) and roots Confluent.Kafka's native method classes. Confluent.Kafka binds its
    /// native methods through reflection over its NativeMethods classes; a trimmed Native AOT binary drops those
    /// private methods unless something roots them, and these attributes are that root (one class per Linux
    /// flavour Confluent.Kafka may pick; the resolver makes it take the first, the others stay as its fallback).
    /// Call this before creating any Kafka client or starting the embedded broker.
    /// </summary>
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicMethods | DynamicallyAccessedMemberTypes.PublicMethods,
        "Confluent.Kafka.Impl.NativeMethods.NativeMethods", "Confluent.Kafka")]
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicMethods | DynamicallyAccessedMemberTypes.PublicMethods,
        "Confluent.Kafka.Impl.NativeMethods.NativeMethods_Centos8", "Confluent.Kafka")]
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicMethods | DynamicallyAccessedMemberTypes.PublicMethods,
        "Confluent.Kafka.Impl.NativeMethods.NativeMethods_Alpine", "Confluent.Kafka")]
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (s_resolversInstalled || !OperatingSystem.IsLinux()) return;
            s_resolversInstalled = true;
            NativeLibrary.SetDllImportResolver(typeof(KafkaNativeLibrary).Assembly, Resolve);
            try
            {
                NativeLibrary.SetDllImportResolver(typeof(Library).Assembly, Resolve);
            }
            catch (InvalidOperationException)
            {
                // The host installed its own resolver for Confluent.Kafka; it decides, and Resolve follows whatever
                // it loaded (found mapped in the process) when the embedded broker binds.
            }
        }
    }

    /// <summary>
    /// Has Confluent.Kafka bind its native methods on a background thread while the caller goes on (reading the
    /// configuration, building the host, starting the embedded broker), so the first Kafka client does not wait for
    /// it. The binding looks up each of its ~100 functions by name over reflection metadata: about 50 ms of CPU under
    /// Native AOT, a third of a worker's start. A failure is left for the first client to report.
    /// </summary>
    public static void BindInBackground()
    {
        EnsureLoaded();
        var thread = new Thread(static () =>
        {
            try
            {
                _ = Library.Version;
            }
            catch (Exception)
            {
                // Whatever failed (no usable librdkafka, too old a version) fails again in the first client's
                // constructor, where it is reported; an exception escaping this thread would end the process.
            }
        })
        { IsBackground = true, Name = "drakkar-kafka-bind" };
        thread.Start();
    }

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != ImportName && Array.IndexOf(PackageFiles, libraryName) < 0) return 0;
        lock (Gate)
        {
            if (s_handle != 0) return s_handle;
            foreach (var path in Candidates())
            {
                if (!NativeLibrary.TryLoad(path, out var handle)) continue;
                s_handle = handle;
                s_path = path;
                return handle;
            }
            if (NativeLibrary.TryLoad(ImportName, assembly, searchPath, out var fallback))
            {
                s_handle = fallback;
                s_path = MappedLibrdkafka();
                return fallback;
            }
            return 0;
        }
    }

    /// <summary>Where to look, best first: a librdkafka already in the process, then the package's builds.</summary>
    private static IEnumerable<string> Candidates()
    {
        if (MappedLibrdkafka() is { } mapped) yield return mapped;
        var directories = new List<string> { AppContext.BaseDirectory };
        var architecture = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        directories.Add(Path.Combine(AppContext.BaseDirectory, "runtimes", $"linux-{architecture}", "native"));
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searchDirectories)
            directories.AddRange(searchDirectories.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        foreach (var file in PackageFiles)
        {
            foreach (var directory in directories.Distinct(StringComparer.Ordinal))
            {
                var path = Path.Combine(directory, file);
                if (File.Exists(path)) yield return path;
            }
        }
    }

    /// <summary>The path of a librdkafka shared object already mapped into this process, if any.</summary>
    internal static string? MappedLibrdkafka()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                var slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash < 0) continue;
                var path = line[slash..];
                var name = Path.GetFileName(path);
                if (name.StartsWith("librdkafka.so", StringComparison.Ordinal) ||
                    name is "centos8-librdkafka.so" or "alpine-librdkafka.so")
                    return path;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }
}
