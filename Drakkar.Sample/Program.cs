using Drakkar.Kafka.Embedded;

// Toolchain probe for the AOT publish; replaced by the sample worker.
using var broker = EmbeddedKafkaBroker.Start();
broker.CreateTopic("probe", 2);
Console.WriteLine(broker.BootstrapServers);
return 0;
