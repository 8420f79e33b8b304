namespace Drakkar;

/// <summary>Who this worker is, for logs, metrics and the consumer's client id (C4).</summary>
/// <param name="WorkerId">From the variable named by <c>worker_name_env</c>, else generated (<c>drakkar-1a2b3c4d</c>).</param>
/// <param name="ClusterName">From the variable named by <c>cluster_name_env</c> when set, else <c>cluster_name</c>, else empty.</param>
internal sealed record WorkerIdentity(string WorkerId, string ClusterName)
{
    /// <summary>Resolves the identity from the process environment.</summary>
    public static WorkerIdentity Resolve(DrakkarConfig config) => Resolve(config, ConfigLoader.ReadProcessEnvironment());

    /// <summary>Resolves the identity; <paramref name="workerId"/>, when given, wins over everything (like Drakkar's <c>worker_id=</c>).</summary>
    public static WorkerIdentity Resolve(
        DrakkarConfig config, IReadOnlyDictionary<string, string?> environment, string? workerId = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(environment);

        var id = NonEmpty(workerId) ?? Lookup(environment, config.WorkerNameEnv) ?? GenerateWorkerId();
        // Drakkar's order: the variable (a per-deployment value) beats the file's cluster_name.
        var cluster = Lookup(environment, config.ClusterNameEnv) ?? config.ClusterName;
        return new WorkerIdentity(id, cluster);
    }

    /// <summary>
    /// A fresh id, <c>drakkar-</c> plus 8 random hex digits: the first 32 bits of a version 4 GUID, which .NET draws
    /// from the kernel's random source. Not <c>RandomNumberGenerator</c>: on Linux that loads OpenSSL (libcrypto and
    /// libssl, 3.6 MB resident) into a worker that may never use it otherwise.
    /// </summary>
    public static string GenerateWorkerId() => "drakkar-" + Guid.NewGuid().ToString("N")[..8];

    private static string? Lookup(IReadOnlyDictionary<string, string?> environment, string name) =>
        name.Length > 0 && environment.TryGetValue(name, out var value) ? NonEmpty(value) : null;

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
