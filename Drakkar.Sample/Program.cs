using Drakkar;
using Drakkar.Sample;

return await DrakkarApp.RunAsync<SearchHandler>(args, new DrakkarAppOptions
{
    Description = "Drakkar sample: search requests {request_id, pattern, path} become grep/rg runs.",
});
