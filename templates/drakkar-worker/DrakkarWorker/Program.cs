using Drakkar;
using DrakkarWorker;

// run (the default), check-config, replay-dlq, probe and --help. The configuration comes from --config, DK_CONFIG or
// ./drakkar.yaml; DK_SECTION__KEY environment variables override any key.
return await DrakkarApp.RunAsync<WordCountHandler>(args);
