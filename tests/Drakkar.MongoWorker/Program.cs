using Drakkar;
using Drakkar.MongoWorker;
using Drakkar.Sinks;

return await DrakkarApp.RunAsync<ArchiveHandler>(args, new DrakkarAppOptions
{
    Description = "Test worker: every reading {id, count} on the source topic becomes a document in the mongo sink 'archive'.",
    Sinks = new SinkRegistry().AddMongoDB(),
});
