using Drakkar.Execution;
using Drakkar.Pipeline;

namespace Drakkar.Diagnostics.Recorder;

/// <summary>Tells the worker's events about every task attempt the wrapped executor finishes.</summary>
internal sealed class RecordingExecutor(ITaskExecutor inner, IWorkerEvents events) : ITaskExecutor, IAsyncDisposable
{
    public ITaskExecutor Inner => inner;

    public async ValueTask<ExecutorOutcome> ExecuteAsync(ExecutorTask task, long priority, int attempt, CancellationToken cancellationToken)
    {
        var outcome = await inner.ExecuteAsync(task, priority, attempt, cancellationToken).ConfigureAwait(false);
        events.TaskFinished(task, attempt, outcome);
        return outcome;
    }

    public async ValueTask DisposeAsync()
    {
        switch (inner)
        {
            case IAsyncDisposable asyncDisposable: await asyncDisposable.DisposeAsync().ConfigureAwait(false); break;
            case IDisposable disposable: disposable.Dispose(); break;
        }
    }
}
