using System.Diagnostics.CodeAnalysis;

namespace Drakkar.Execution;

/// <summary>One attempt's outcome: a result (exit code 0) or an error. <c>default</c> is not a valid outcome.</summary>
internal readonly struct ExecutorOutcome
{
    private ExecutorOutcome(ExecutorResult? result, ExecutorError? error)
    {
        Result = result;
        Error = error;
    }

    public ExecutorResult? Result { get; }

    public ExecutorError? Error { get; }

    [MemberNotNullWhen(true, nameof(Result))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool Succeeded => Result is not null;

    public ExecutorTask Task => Result?.Task ?? Error!.Task;

    public static ExecutorOutcome Success(ExecutorResult result) => new(result ?? throw new ArgumentNullException(nameof(result)), null);

    public static ExecutorOutcome Failure(ExecutorError error) => new(null, error ?? throw new ArgumentNullException(nameof(error)));

    public override string ToString() => Succeeded ? $"{Task.TaskId}: exit 0" : Error.Message;
}
