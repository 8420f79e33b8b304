namespace Drakkar.IntegrationTests.Support;

/// <summary>
/// Marks the tests that run a Native AOT binary build/test.sh publishes in the background (DRAKKAR_SAMPLE_AOT,
/// DRAKKAR_MONGO_WORKER_AOT): it runs them once their binary is published (--filter NativeAot=sample, then
/// NativeAot=mongo-worker) and every other test while the publishes are under way.
/// </summary>
internal static class NativeAotTrait
{
    public const string Name = "NativeAot";
    public const string Sample = "sample";
    public const string MongoWorker = "mongo-worker";
}
