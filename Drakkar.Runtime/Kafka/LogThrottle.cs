using System.Diagnostics;

namespace Drakkar.Kafka;

/// <summary>
/// Lets a repeated log line through at most once per <see cref="Interval"/>, counting the ones held back so the next
/// line can say how many there were (the metric beside it counts every one). Not thread-safe: one per poll thread.
/// </summary>
internal struct LogThrottle
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private long _loggedAt;
    private int _notLogged;

    /// <summary>True when this occurrence is to be logged (<paramref name="always"/> forces it); then <paramref name="notLogged"/> is how many were held back since the last.</summary>
    public bool Allow(out int notLogged, bool always = false)
    {
        var now = Stopwatch.GetTimestamp();
        if (!always && _loggedAt != 0 && Stopwatch.GetElapsedTime(_loggedAt, now) < Interval)
        {
            _notLogged++;
            notLogged = 0;
            return false;
        }
        notLogged = _notLogged;
        (_loggedAt, _notLogged) = (now, 0);
        return true;
    }
}
