namespace Drakkar.IntegrationTests.Support;

/// <summary>Polls for an outcome with a deadline instead of sleeping a fixed time.</summary>
public static class Eventually
{
    public static Task<T> Get<T>(Func<T?> probe, Func<T?, bool> done, TimeSpan timeout, string what) =>
        Get(probe, done, timeout, () => what);

    /// <summary>
    /// As above; <paramref name="what"/> is read when the deadline passes, so a message that shows state (a process's
    /// stderr, the logs) shows it as it was then, not as it was when the wait began.
    /// </summary>
    public static async Task<T> Get<T>(Func<T?> probe, Func<T?, bool> done, TimeSpan timeout, Func<string> what)
    {
        var deadline = DateTime.UtcNow + timeout;
        T? last = default;
        while (DateTime.UtcNow < deadline)
        {
            last = probe();
            if (done(last)) return last!;
            await Task.Delay(20);
        }
        throw new TimeoutException($"{what()} did not happen within {timeout.TotalSeconds}s (last seen: {last})");
    }

    public static Task True(Func<bool> condition, TimeSpan timeout, string what) =>
        Get(() => condition(), ok => ok, timeout, () => what);

    public static Task True(Func<bool> condition, TimeSpan timeout, Func<string> what) =>
        Get(() => condition(), ok => ok, timeout, what);
}
