using Drakkar.Cli;
using Microsoft.Extensions.Hosting;

namespace Drakkar.Hosting;

/// <summary>
/// The host's lifetime with <see cref="ShutdownSignals"/> as the one owner of SIGTERM/SIGINT (in place of the
/// console lifetime): the first signal stops the host gracefully, a second one exits 130 at once.
/// </summary>
internal sealed class SignalLifetime : IHostLifetime, IDisposable
{
    private readonly IHostApplicationLifetime _lifetime;
    private ShutdownSignals? _signals;
    private CancellationTokenRegistration _stop;

    public SignalLifetime(IHostApplicationLifetime lifetime) => _lifetime = lifetime;

    public Task WaitForStartAsync(CancellationToken cancellationToken)
    {
        _signals = new ShutdownSignals(Console.Error);
        _stop = _signals.Token.Register(_lifetime.StopApplication);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        _stop.Dispose();
        _signals?.Dispose();
    }
}
