namespace Drakkar;

/// <summary>
/// Task ids of the form <c>prefix-{16 hex time}-{8 hex random}</c>, sortable by creation time. The time part is strictly
/// increasing within a process, so ids never repeat there; the random part only tells processes apart, which needs no
/// cryptographic generator (one per task cost a call into OpenSSL, and a getpid, on every task).
/// </summary>
public static class TaskId
{
    private static long _lastTicks;

    public static string New(string prefix = "task")
    {
        // Strictly increasing ticks so ids made in the same tick still sort by creation order.
        long ticks, last;
        do
        {
            last = Volatile.Read(ref _lastTicks);
            ticks = Math.Max(DateTime.UtcNow.Ticks, last + 1);
        }
        while (Interlocked.CompareExchange(ref _lastTicks, ticks, last) != last);
        return string.Create(prefix.Length + 26, (prefix, ticks), static (span, state) =>
        {
            state.prefix.AsSpan().CopyTo(span);
            var rest = span[state.prefix.Length..];
            rest[0] = '-';
            state.ticks.TryFormat(rest[1..17], out _, "x16");
            rest[17] = '-';
            ((uint)Random.Shared.NextInt64(1L << 32)).TryFormat(rest[18..26], out _, "x8");
        });
    }
}
