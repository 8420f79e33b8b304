namespace Drakkar;

/// <summary>
/// How long a retry decided by a hook (<c>OnError</c> → <see cref="ErrorDecision.Retry"/>, <c>OnDeliveryError</c> →
/// <see cref="DeliveryAction.Retry"/>) waits before the next attempt: capped exponential backoff with "equal jitter".
/// Retry <c>n</c> (1 for the first) waits a random time between <c>d/2</c> and <c>d</c>, where
/// <c>d = min(Initial × 2^(n−1), Max)</c>, so waits never shrink and workers that failed together spread out.
/// </summary>
/// <param name="Initial">The nominal first wait (<c>retry_backoff_ms</c>).</param>
/// <param name="Max">The cap (<c>retry_backoff_max_ms</c>).</param>
internal sealed record RetryBackoff(TimeSpan Initial, TimeSpan Max)
{
    /// <summary>Retries at once (tests, or <c>retry_backoff_ms: 0</c>).</summary>
    public static RetryBackoff None { get; } = new(TimeSpan.Zero, TimeSpan.Zero);

    /// <summary>From a <c>retry_backoff_ms</c>/<c>retry_backoff_max_ms</c> pair.</summary>
    public static RetryBackoff FromMilliseconds(int initialMs, int maxMs) =>
        new(TimeSpan.FromMilliseconds(initialMs), TimeSpan.FromMilliseconds(Math.Max(initialMs, maxMs)));

    /// <summary>The nominal wait <c>d</c> before retry <paramref name="retry"/>: the upper end of its random range.</summary>
    public TimeSpan Nominal(int retry)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retry, 1);
        var initial = Initial.Ticks;
        if (initial <= 0) return TimeSpan.Zero;
        // Doubling stops once the cap is reached, before the shift could overflow.
        var ticks = initial;
        for (var i = 1; i < retry && ticks < Max.Ticks; i++) ticks *= 2;
        return TimeSpan.FromTicks(Math.Min(ticks, Max.Ticks));
    }

    /// <summary>The wait before retry <paramref name="retry"/>: uniformly between half of <see cref="Nominal"/> and all of it.</summary>
    public TimeSpan Before(int retry, Random random)
    {
        var nominal = Nominal(retry).Ticks;
        return TimeSpan.FromTicks(nominal / 2 + (long)(random.NextDouble() * (nominal - nominal / 2)));
    }
}
