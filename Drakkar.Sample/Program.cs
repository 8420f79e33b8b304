using Drakkar;
using Drakkar.Sample;
using Drakkar.Sample.Demo;

return await DrakkarApp.RunAsync<SearchHandler>(args, new DrakkarAppOptions
{
    Description = "Drakkar sample: search requests {request_id, pattern, path} become rg/grep runs; one result per request goes to the sinks.\n" +
                  "With no configuration it runs a self-contained demo on an embedded Kafka broker.",
    DefaultConfig = EmbeddedDemo.Config,
    Companion = EmbeddedDemo.RunAsync,
});
