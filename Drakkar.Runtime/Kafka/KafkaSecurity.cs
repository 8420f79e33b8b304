using Confluent.Kafka;

namespace Drakkar.Kafka;

/// <summary>
/// The connection security every Kafka client of a worker uses (the source consumer, the Kafka sinks, the DLQ
/// producer, <c>replay-dlq</c>): <c>kafka.security_protocol</c>, <c>kafka.sasl_*</c> and <c>kafka.ssl_*</c>, passed
/// through to librdkafka's <c>security.protocol</c>, <c>sasl.*</c> and <c>ssl.*</c> properties. The passwords are
/// registered with the sinks' masker, so no error that echoes them reaches a log or the DLQ.
/// </summary>
internal static class KafkaSecurity
{
    /// <summary>The values <c>kafka.security_protocol</c> accepts.</summary>
    public static readonly string[] Protocols = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];

    /// <summary>
    /// The values <c>kafka.sasl_mechanism</c> accepts: the mechanisms the bundled librdkafka builds carry without a
    /// system SASL library (GSSAPI/Kerberos needs Cyrus SASL, which the self-contained build used on Debian lacks).
    /// </summary>
    public static readonly string[] Mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

    public static bool UsesSasl(KafkaConfig kafka) => kafka.SecurityProtocol.StartsWith("sasl_", StringComparison.OrdinalIgnoreCase);

    public static bool UsesTls(KafkaConfig kafka) => kafka.SecurityProtocol.EndsWith("ssl", StringComparison.OrdinalIgnoreCase);

    /// <summary>Copies the security keys onto <paramref name="client"/> and returns it.</summary>
    public static T Apply<T>(T client, KafkaConfig kafka, Sinks.SinkSecretMasker? masker = null) where T : ClientConfig
    {
        masker?.Add(kafka.SaslPassword);
        masker?.Add(kafka.SslKeyPassword);
        client.SecurityProtocol = kafka.SecurityProtocol.ToLowerInvariant() switch
        {
            "ssl" => SecurityProtocol.Ssl,
            "sasl_plaintext" => SecurityProtocol.SaslPlaintext,
            "sasl_ssl" => SecurityProtocol.SaslSsl,
            _ => SecurityProtocol.Plaintext,
        };
        if (UsesSasl(kafka))
        {
            client.SaslMechanism = kafka.SaslMechanism.ToUpperInvariant() switch
            {
                "SCRAM-SHA-256" => SaslMechanism.ScramSha256,
                "SCRAM-SHA-512" => SaslMechanism.ScramSha512,
                _ => SaslMechanism.Plain,
            };
            client.SaslUsername = kafka.SaslUsername;
            client.SaslPassword = kafka.SaslPassword;
        }
        if (UsesTls(kafka))
        {
            if (kafka.SslCaLocation.Length > 0) client.SslCaLocation = kafka.SslCaLocation;
            if (kafka.SslCertificateLocation.Length > 0) client.SslCertificateLocation = kafka.SslCertificateLocation;
            if (kafka.SslKeyLocation.Length > 0) client.SslKeyLocation = kafka.SslKeyLocation;
            if (kafka.SslKeyPassword.Length > 0) client.SslKeyPassword = kafka.SslKeyPassword;
            if (!kafka.SslVerifyHostname) client.SslEndpointIdentificationAlgorithm = SslEndpointIdentificationAlgorithm.None;
        }
        return client;
    }
}
