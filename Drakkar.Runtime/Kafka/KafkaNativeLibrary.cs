using System.Diagnostics.CodeAnalysis;

namespace Drakkar.Kafka;

/// <summary>Makes sure Confluent.Kafka can bind librdkafka, including under Native AOT.</summary>
/// <remarks>
/// Loading itself is left to Confluent.Kafka's default probing, which finds <c>librdkafka.so</c> beside the
/// binary. <c>Library.Load(path)</c> is avoided on purpose: it dlopens through "libdl", which glibc 2.34+
/// systems no longer ship as an unversioned library.
/// </remarks>
internal static class KafkaNativeLibrary
{
    /// <summary>
    /// Confluent.Kafka binds its native methods through reflection over its NativeMethods classes. A trimmed
    /// Native AOT binary drops those private methods unless something roots them; these attributes are that root
    /// (one class per Linux flavour Confluent.Kafka may pick). Call this before creating any Kafka client.
    /// </summary>
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicMethods | DynamicallyAccessedMemberTypes.PublicMethods,
        "Confluent.Kafka.Impl.NativeMethods.NativeMethods", "Confluent.Kafka")]
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicMethods | DynamicallyAccessedMemberTypes.PublicMethods,
        "Confluent.Kafka.Impl.NativeMethods.NativeMethods_Centos8", "Confluent.Kafka")]
    [DynamicDependency(DynamicallyAccessedMemberTypes.NonPublicMethods | DynamicallyAccessedMemberTypes.PublicMethods,
        "Confluent.Kafka.Impl.NativeMethods.NativeMethods_Alpine", "Confluent.Kafka")]
    public static void EnsureLoaded()
    {
    }
}
