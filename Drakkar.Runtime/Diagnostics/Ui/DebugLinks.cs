using System.Globalization;

namespace Drakkar.Diagnostics.Ui;

/// <summary>A named link the debug UI shows.</summary>
internal sealed record DebugLink(string Name, string Url);

/// <summary>
/// The links of the debug UI: <c>debug.custom_links</c>, Prometheus graphs (<c>debug.prometheus_*</c>), the Kafka UI
/// (<c>kafka.ui_url</c>, <c>kafka.ui_cluster_name</c>) and each sink's <c>ui_url</c>. Link templates may use
/// <c>{worker_id}</c>, <c>{cluster_name}</c>, <c>{metrics_port}</c> and <c>{debug_port}</c>. Every URL is shown with its
/// credentials masked, as <c>check-config</c> shows it: the page (and the recorder's <c>worker_state</c> rows) never
/// carries a password, a token in the user part or a secret-named query parameter.
/// </summary>
internal static class DebugLinks
{
    public static string Expand(string template, DrakkarConfig config, string workerId) => template
        .Replace("{worker_id}", workerId, StringComparison.Ordinal)
        .Replace("{cluster_name}", config.ClusterName, StringComparison.Ordinal)
        .Replace("{metrics_port}", config.Metrics.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
        .Replace("{debug_port}", config.Debug.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    /// <summary><c>debug.custom_links</c> entries with both <c>name</c> and <c>url</c>, templates expanded.</summary>
    public static List<DebugLink> Custom(DrakkarConfig config, string workerId) =>
        [.. config.Debug.CustomLinks
            .Where(l => l.TryGetValue("name", out var n) && n.Length > 0 && l.TryGetValue("url", out var u) && u.Length > 0)
            .Select(l => new DebugLink(l["name"], SecretMasker.Mask(Expand(l["url"], config, workerId))))];

    /// <summary>
    /// Prometheus graph links for this worker (and for the cluster when <c>debug.prometheus_cluster_label</c> is set);
    /// none without <c>debug.prometheus_url</c>. The worker's selector is <c>debug.prometheus_worker_label</c>, or
    /// <c>instance="{host}:{metrics.port}"</c> when that is empty.
    /// </summary>
    public static List<DebugLink> Prometheus(DrakkarConfig config, string workerId)
    {
        var debug = config.Debug;
        if (debug.PrometheusUrl.Length == 0) return [];
        var rate = debug.PrometheusRateInterval;
        var worker = debug.PrometheusWorkerLabel.Length > 0
            ? Expand(debug.PrometheusWorkerLabel, config, workerId)
            : $"instance=\"{Environment.MachineName}:{config.Metrics.Port.ToString(CultureInfo.InvariantCulture)}\"";
        var links = new List<DebugLink>
        {
            Graph(debug, "Messages consumed per second", $"sum(rate(drakkar_messages_consumed_total{{{worker}}}[{rate}]))"),
            Graph(debug, "Task attempts per second by outcome", $"sum by (status) (rate(drakkar_executor_tasks_total{{{worker}}}[{rate}]))"),
            Graph(debug, "Task duration p95", $"histogram_quantile(0.95, sum by (le) (rate(drakkar_executor_duration_seconds_bucket{{{worker}}}[{rate}])))"),
            Graph(debug, "Offset lag by partition", $"sum by (partition) (drakkar_offset_lag{{{worker}}})"),
            Graph(debug, "Payloads delivered per second by sink", $"sum by (sink_type, sink_name) (rate(drakkar_sink_payloads_delivered_total{{{worker}}}[{rate}]))"),
            Graph(debug, "Recorder events dropped", $"sum by (reason) (rate(drakkar_recorder_dropped_events_total{{{worker}}}[{rate}]))"),
        };
        if (debug.PrometheusClusterLabel.Length > 0)
        {
            var cluster = Expand(debug.PrometheusClusterLabel, config, workerId);
            links.Add(Graph(debug, "Cluster: messages consumed per second", $"sum(rate(drakkar_messages_consumed_total{{{cluster}}}[{rate}]))"));
            links.Add(Graph(debug, "Cluster: offset lag", $"sum(drakkar_offset_lag{{{cluster}}})"));
        }
        return links;
    }

    /// <summary>
    /// The Kafka UI link from <c>kafka.ui_url</c>: with <c>kafka.ui_cluster_name</c>, the source topic's page in
    /// that cluster (<c>{ui_url}/ui/clusters/{name}/all-topics/{topic}</c>, the Kafka UI / Kafbat layout); null without a URL.
    /// </summary>
    public static DebugLink? KafkaUi(DrakkarConfig config)
    {
        var kafka = config.Kafka;
        if (kafka.UiUrl.Length == 0) return null;
        var uiUrl = SecretMasker.Mask(kafka.UiUrl);
        if (kafka.UiClusterName.Length == 0) return new DebugLink("Kafka UI", uiUrl);
        var url = $"{uiUrl.TrimEnd('/')}/ui/clusters/{Uri.EscapeDataString(kafka.UiClusterName)}/all-topics/{Uri.EscapeDataString(kafka.SourceTopic)}";
        return new DebugLink($"Kafka UI: {kafka.UiClusterName} / {kafka.SourceTopic}", url);
    }

    /// <summary>Each configured sink instance's <c>ui_url</c>, by <c>kind/name</c>.</summary>
    public static Dictionary<string, string> SinkUrls(DrakkarConfig config)
    {
        var urls = new Dictionary<string, string>(StringComparer.Ordinal);
        var sinks = config.Sinks;
        Add("kafka", sinks.Kafka);
        Add("postgres", sinks.Postgres);
        Add("mongo", sinks.Mongo);
        Add("http", sinks.Http);
        Add("redis", sinks.Redis);
        Add("filesystem", sinks.Filesystem);
        foreach (var (kind, instances) in sinks.Custom) Add(kind, instances);
        return urls;

        void Add<T>(string kind, Dictionary<string, T> instances) where T : SinkInstanceConfig
        {
            foreach (var (name, instance) in instances)
                if (instance.UiUrl.Length > 0) urls[$"{kind}/{name}"] = SecretMasker.Mask(instance.UiUrl);
        }
    }

    private static DebugLink Graph(DebugConfig debug, string name, string query) =>
        new(name, $"{SecretMasker.Mask(debug.PrometheusUrl).TrimEnd('/')}/graph?g0.expr={Uri.EscapeDataString(query)}&g0.tab=0");
}
