namespace Drakkar.Generators.Tests;

[Sink(SinkKind.Kafka, "results")]
[Sink(SinkKind.Postgres, "main")]
[Sink("s3", "archive")]
public abstract partial class BaseTestHandler : DrakkarHandler
{
    public int BaseTicks { get; private set; }

    [Periodic(60, OnError = PeriodicOnError.Stop)]
    private ValueTask BaseTick(CancellationToken cancellationToken)
    {
        BaseTicks++;
        return ValueTask.CompletedTask;
    }
}

[Sink(SinkKind.Kafka, "alerts")]
public sealed partial class TestHandler : BaseTestHandler
{
    public int Ticks { get; private set; }
    public CancellationToken SeenToken { get; private set; }

    public IReadOnlyList<SinkDeclaration> Sinks => DeclaredSinks;
    public IReadOnlyList<PeriodicRegistration> Periodic => PeriodicMethods;

    public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage> messages, PendingContext pending) =>
        ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);

    [Periodic(0.25)]
    internal async Task Flush(CancellationToken cancellationToken)
    {
        await Task.Yield();
        SeenToken = cancellationToken;
        Ticks++;
    }
}

/// <summary>The generated overrides, exercised on real handler instances compiled by this project.</summary>
public sealed class HandlerRegistrationTests
{
    [Fact]
    public void Declared_sinks_include_the_base_handlers_in_declaration_order()
    {
        var handler = new TestHandler();

        Assert.Equal(
            ["sinks.kafka.alerts", "sinks.kafka.results", "sinks.postgres.main", "sinks.custom.s3.archive"],
            handler.Sinks.Select(s => s.ConfigPath));
        Assert.Same(handler.Sinks, new TestHandler().Sinks);
    }

    [Fact]
    public async Task Periodic_registrations_call_the_instance_methods_with_the_token()
    {
        var handler = new TestHandler();
        var periodic = handler.Periodic;

        Assert.Equal(["BaseTick", "Flush"], periodic.Select(p => p.Name));
        Assert.Equal([TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(250)], periodic.Select(p => p.Interval));
        Assert.Equal([PeriodicOnError.Stop, PeriodicOnError.Continue], periodic.Select(p => p.OnError));
        Assert.Same(periodic, handler.Periodic);

        using var cancellation = new CancellationTokenSource();
        await periodic[1].Run(cancellation.Token);
        await periodic[0].Run(CancellationToken.None);

        Assert.Equal((1, 1, cancellation.Token), (handler.Ticks, handler.BaseTicks, handler.SeenToken));
        Assert.Equal(0, new TestHandler().Ticks);
    }
}
