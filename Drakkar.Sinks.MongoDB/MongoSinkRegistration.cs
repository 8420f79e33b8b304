using Drakkar.Sinks.Mongo;

namespace Drakkar.Sinks;

/// <summary>How a worker opts into the MongoDB sink: one call on its <see cref="SinkRegistry"/>.</summary>
public static class MongoSinkRegistration
{
    /// <summary>
    /// Makes <c>sinks.mongo.{name}</c> instances available to the worker:
    /// <c>DrakkarApp.RunAsync&lt;MyHandler&gt;(args, new DrakkarAppOptions { Sinks = new SinkRegistry().AddMongoDB() })</c>.
    /// </summary>
    public static SinkRegistry AddMongoDB(this SinkRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return registry.Register(SinkKind.Mongo, context => new MongoSink(context));
    }
}
