using System.Diagnostics.CodeAnalysis;

namespace Drakkar.Kafka;

/// <summary>Makes sure Confluent.Kafka can bind librdkafka, including under Native AOT.</summary>
internal static class KafkaNativeLibrary
{
    private static int _loaded;

    /// <summary>
    /// Confluent.Kafka binds its native methods through reflection over its NativeMethods classes. A trimmed
    /// Native AOT binary drops those private methods unless something roots them; these attributes are that root
    /// (one class per Linux flavour Confluent.Kafka may pick).
    /// </summary>
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicMethods | DynamicallyAccessedMemberTypes.PublicMethods,
        "Confluent.Kafka.Impl.NativeMethods.NativeMethods", "Confluent.Kafka")]
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicMethods | DynamicallyAccessedMemberTypes.PublicMethods,
        "Confluent.Kafka.Impl.NativeMethods.NativeMethods_Centos8", "Confluent.Kafka")]
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicMethods | DynamicallyAccessedMemberTypes.PublicMethods,
        "Confluent.Kafka.Impl.NativeMethods.NativeMethods_Alpine", "Confluent.Kafka")]
    public static void EnsureLoaded()
    {
        if (Interlocked.Exchange(ref _loaded, 1) == 1) return;
        var besideBinary = Path.Combine(AppContext.BaseDirectory, "librdkafka.so");
        Confluent.Kafka.Library.Load(File.Exists(besideBinary) ? besideBinary : null);
    }
}
