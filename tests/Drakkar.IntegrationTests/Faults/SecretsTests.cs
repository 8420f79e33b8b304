using System.Net.Http;
using System.Text;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Drakkar.IntegrationTests.Faults;

/// <summary>
/// SPEC S17 through the sample binary: a PostgreSQL DSN password, an HTTP sink's Authorization header, a Redis
/// password and Kafka SASL credentials, each made to fail (PostgreSQL killed, the Redis password changed under the
/// worker, the HTTP receiver refusing with a body that repeats the token, SASL against a broker that has none), so
/// errors are logged and payloads dead-lettered. None of the secrets may appear in the worker's logs, its DLQ
/// records, its <c>/metrics</c> output or <c>check-config</c>.
/// </summary>
[Trait(NativeAotTrait.Name, NativeAotTrait.Sample)]
[Collection(FaultServersCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SecretsTests(KafkaBroker kafka, PostgresServer postgres, RedisServer redis, ITestOutputHelper output) : IDisposable
{
    private const string PgPassword = "pg-Secret-5c1e9a";
    private const string WebhookToken = "hook-Secret-77d2b0";
    private const string RedisPassword = "redis-Secret-3fa8c4";
    private const string KafkaPassword = "sasl-Secret-b61e05";
    private static readonly string[] Secrets = [PgPassword, WebhookToken, RedisPassword, KafkaPassword];
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-secrets-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task No_secret_reaches_logs_dlq_records_metrics_or_check_config_while_every_sink_fails()
    {
        var topic = kafka.CreateTopic("secrets-in");
        var dlq = kafka.CreateTopic("secrets-dlq");
        using var receiver = new HttpReceiver();
        // A receiver that refuses the token and says which one it refused.
        receiver.RespondWith(401, $"{{\"error\":\"token {WebhookToken} is not valid\"}}");
        var environment = new Dictionary<string, string>
        {
            ["PG_PASSWORD"] = PgPassword, ["WEBHOOK_TOKEN"] = WebhookToken, ["REDIS_PASSWORD"] = RedisPassword, ["KAFKA_PASSWORD"] = KafkaPassword,
        };
        var metricsPort = FreePort.Next();
        var worker = Path.Combine(_dir, "worker.yaml");
        await File.WriteAllTextAsync(worker, Config(topic, dlq, receiver.Url, metricsPort, sasl: false));
        var saslMetricsPort = FreePort.Next();
        var saslWorker = Path.Combine(_dir, "sasl-worker.yaml");
        await File.WriteAllTextAsync(saslWorker, Config(topic, dlq, receiver.Url, saslMetricsPort, sasl: true));
        var binary = SampleBinary.PathOf(aot: true) ?? SampleBinary.PathOf(aot: false)!;

        using var admin = new Resp(redis.Port);
        admin.Call("CONFIG", "SET", "requirepass", RedisPassword);
        try
        {
            using var sample = SampleBinary.Start(binary, ["--config", worker], _dir, environment);
            await Eventually.True(() => sample.Stderr.Contains("is ready", StringComparison.Ordinal) || sample.HasExited, TimeSpan.FromSeconds(30), "the worker ready");
            Assert.False(sample.HasExited, sample.Stderr);

            // The HTTP sink fails at once (401); then PostgreSQL dies and Redis wants another password.
            await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 5, Request);
            await Eventually.True(() => DeadLetterSinks(dlq).Contains("webhook"), TimeSpan.FromSeconds(30), () => $"the refused webhook dead-lettered\n{sample.Stderr}");
            postgres.Stop();
            admin.Call("AUTH", RedisPassword);
            admin.Call("CONFIG", "SET", "requirepass", RedisPassword + "-rotated");
            admin.Call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
            await TestWorker.ProduceAsync(kafka.BootstrapServers, topic, 1, 5, i => Request(i + 5));
            await Eventually.True(() => DeadLetterSinks(dlq).IsSupersetOf(["webhook", "main", "cache"]), TimeSpan.FromSeconds(90),
                () => $"a dead letter from each failing sink (so far: {string.Join(", ", DeadLetterSinks(dlq))})\n{sample.Stderr}");
            using var http = new HttpClient();
            var metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
            sample.Signal(Posix.SigTerm);
            Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(40)), "the worker stopped");
            Repair();

            // The same worker with SASL credentials, against a broker that speaks no SASL: its clients fail to connect.
            using var saslSample = SampleBinary.Start(binary, ["--config", saslWorker], _dir, environment);
            await Eventually.True(() => saslSample.Stderr.Contains("Kafka", StringComparison.Ordinal) && saslSample.Stderr.Contains("error", StringComparison.OrdinalIgnoreCase),
                TimeSpan.FromSeconds(30), () => $"the SASL worker's Kafka errors logged (exited: {saslSample.HasExited})\n{saslSample.Stderr}\n{saslSample.Stdout}");
            var saslMetrics = await http.GetStringAsync($"http://127.0.0.1:{saslMetricsPort}/metrics");
            saslSample.Signal(Posix.SigKill);
            saslSample.WaitForExit(TimeSpan.FromSeconds(10));

            var checkConfig = new List<string>();
            foreach (var config in new[] { worker, saslWorker })
            {
                using var check = SampleBinary.Start(binary, ["check-config", "--config", config], _dir, environment);
                Assert.True(check.WaitForExit(TimeSpan.FromSeconds(30)), "check-config finished");
                Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);
                checkConfig.Add(check.Stdout + check.Stderr);
            }

            var deadLetters = TopicRecords.ReadAll(kafka.BootstrapServers, dlq).Select(r =>
                Encoding.UTF8.GetString(r.Value ?? []) + Encoding.UTF8.GetString(r.Key ?? []) +
                string.Concat(r.Headers.Select(h => h.Key + Encoding.UTF8.GetString(h.GetValueBytes())))).ToList();
            var places = new Dictionary<string, string>
            {
                ["worker log"] = sample.Stderr + sample.Stdout,
                ["SASL worker log"] = saslSample.Stderr + saslSample.Stdout,
                ["DLQ records"] = string.Join("\n", deadLetters),
                ["/metrics"] = metrics,
                ["SASL worker /metrics"] = saslMetrics,
                ["check-config"] = checkConfig[0],
                ["check-config (SASL)"] = checkConfig[1],
            };
            output.WriteLine($"{deadLetters.Count} DLQ records; worker log {sample.StderrLines.Count} lines; SASL worker log {saslSample.StderrLines.Count} lines");
            // The failures happened and were reported where the secrets could have leaked.
            Assert.Contains(deadLetters, d => d.Contains("401", StringComparison.Ordinal) && d.Contains("is not valid", StringComparison.Ordinal));
            Assert.Contains("sasl_password: \"***\"", checkConfig[1], StringComparison.Ordinal);
            foreach (var (place, text) in places)
                foreach (var secret in Secrets)
                    Assert.False(text.Contains(secret, StringComparison.Ordinal), $"{secret} appears in the {place}:\n{Around(text, secret)}");
        }
        finally
        {
            Repair();
        }
    }

    /// <summary>PostgreSQL running and Redis without a password again, for the collection's other tests.</summary>
    private void Repair()
    {
        postgres.Start();
        foreach (var password in new[] { RedisPassword + "-rotated", RedisPassword })
        {
            using var restore = new Resp(redis.Port);
            try
            {
                restore.Call("AUTH", password);
                restore.Call("CONFIG", "SET", "requirepass", "");
                return;
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    private static string Request(int i) => $$"""{"request_id":"s-{{i}}","pattern":"drakkar","path":"/etc/hostname"}""";

    private string Config(string topic, string dlq, string webhook, int metricsPort, bool sasl) => $$"""
        kafka:
          brokers: "{{kafka.BootstrapServers}}"
          source_topic: {{topic}}
          consumer_group: {{topic}}-{{(sasl ? "sasl" : "g")}}
          commit_interval_ms: 200
        {{(sasl ? "  security_protocol: sasl_plaintext\n  sasl_mechanism: SCRAM-SHA-512\n  sasl_username: worker\n  sasl_password: ${KAFKA_PASSWORD}" : "")}}
        executor: { binary_path: /usr/bin/grep, max_executors: 2, window_size: 5, drain_timeout_seconds: 10 }
        sinks:
          circuit_breaker: { failure_threshold: 1000 }
          filesystem: { results: { base_path: "{{_dir}}" } }
          postgres: { main: { dsn: "Host=127.0.0.1;Port={{postgres.Port}};Username=postgres;Password=${PG_PASSWORD};Database=postgres;Timeout=3", on_outage: dlq } }
          redis: { cache: { url: "redis://:${REDIS_PASSWORD}@127.0.0.1:{{redis.Port}}/0", key_prefix: "secrets:", on_outage: dlq } }
          http: { webhook: { url: "{{webhook}}", allow_loopback: true, headers: { Authorization: "Bearer ${WEBHOOK_TOKEN}" }, timeout_seconds: 5, on_outage: dlq } }
        dlq: { topic: {{dlq}} }
        metrics: { enabled: true, host: 127.0.0.1, port: {{metricsPort}} }
        logging: { level: DEBUG }
        """;

    /// <summary>The sink instances the DLQ holds records for.</summary>
    private HashSet<string> DeadLetterSinks(string dlq) =>
        [.. TopicRecords.ReadAll(kafka.BootstrapServers, dlq).Select(r => System.Text.Json.JsonDocument.Parse(r.Value ?? []).RootElement)
            .Where(e => e.TryGetProperty("sink_name", out _)).Select(e => e.GetProperty("sink_name").GetString() ?? "")];

    private static string Around(string text, string secret)
    {
        var at = text.IndexOf(secret, StringComparison.Ordinal);
        return text[Math.Max(0, at - 300)..Math.Min(text.Length, at + secret.Length + 100)];
    }
}
