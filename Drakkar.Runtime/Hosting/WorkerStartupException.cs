namespace Drakkar.Hosting;

/// <summary>
/// A startup check of Drakkar's own failed (a port in use, a directory it cannot write): its message names the
/// setting and what to change, so <see cref="DrakkarApp"/> reports it in one line, without a stack trace.
/// </summary>
internal sealed class WorkerStartupException(string message, Exception? inner = null) : InvalidOperationException(message, inner);
