using System.Diagnostics;

namespace Drakkar.Execution.Posix;

/// <summary>
/// Keeps process starts and socket re-binds from overlapping. A child holds a copy of every descriptor of this process
/// from the moment it is forked until its <c>exec</c> closes the close-on-exec ones, so a listening socket this
/// process closes in that window stays open (and listening) in the child for a moment. The embedded broker's
/// down/up (librdkafka's mock cluster) closes a broker's listening socket and binds its port again at once; when that
/// bind fails, librdkafka aborts the whole process (an assertion). Process starts take the shared side (many at once),
/// the broker's down/up the exclusive side, which waits for the starts in progress, holds new ones back, and then
/// lets <see cref="Settle"/> pass since the last start returned: <c>posix_spawnp</c> (and <c>Process.Start</c>) return
/// once the child is in <c>exec</c>, a moment before the kernel has closed the child's close-on-exec descriptors.
/// </summary>
internal static class SpawnGate
{
    /// <summary>How long after a start returned its child may still hold this process's descriptors (generous: microseconds unless the child is descheduled).</summary>
    internal static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(20);

    private static readonly ReaderWriterLockSlim Gate = new(LockRecursionPolicy.NoRecursion);
    private static long s_lastStartReturned;

    /// <summary>Held while a child process is started.</summary>
    public static Scope Spawning()
    {
        Gate.EnterReadLock();
        return new Scope(exclusive: false);
    }

    /// <summary>Held while something that must not meet a child between fork and the end of its exec runs.</summary>
    public static Scope Exclusive()
    {
        Gate.EnterWriteLock();
        var since = Stopwatch.GetElapsedTime(Volatile.Read(ref s_lastStartReturned));
        if (since < Settle) Thread.Sleep(Settle - since);
        return new Scope(exclusive: true);
    }

    internal readonly struct Scope(bool exclusive) : IDisposable
    {
        public void Dispose()
        {
            if (exclusive)
            {
                Gate.ExitWriteLock();
                return;
            }
            Volatile.Write(ref s_lastStartReturned, Stopwatch.GetTimestamp());
            Gate.ExitReadLock();
        }
    }
}
