using Confluent.Kafka;
using Drakkar.Kafka;
using Microsoft.Extensions.Logging;

namespace Drakkar.Sinks.Kafka;

/// <summary>Builds the byte-level producers the Kafka sink and the DLQ use, with librdkafka's chatter routed to our logger.</summary>
internal static partial class KafkaProducers
{
    public static IProducer<byte[]?, byte[]> Build(ProducerConfig config, ILogger logger, SinkSecretMasker masker, string owner)
    {
        KafkaNativeLibrary.EnsureLoaded();
        return new ProducerBuilder<byte[]?, byte[]>(config)
            .SetLogHandler((_, log) => LogLibrdkafka(logger, owner, log.Facility, masker.Apply(log.Message)))
            .SetErrorHandler((_, error) => LogClientError(logger, owner, error.Code.ToString(), masker.Apply(error.Reason)))
            .Build();
    }

    /// <summary>Copies a message's headers (and only the given ones) onto a Kafka header collection.</summary>
    public static Headers? Headers(IReadOnlyList<KeyValuePair<string, byte[]>> source)
    {
        if (source.Count == 0) return null;
        var headers = new Headers();
        foreach (var (key, value) in source) headers.Add(key, value);
        return headers;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Owner} librdkafka {Facility}: {Text}")]
    private static partial void LogLibrdkafka(ILogger logger, string owner, string facility, string text);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Owner} Kafka client error {Code}: {Reason}")]
    private static partial void LogClientError(ILogger logger, string owner, string code, string reason);
}
