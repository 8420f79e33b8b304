using System.Diagnostics.Metrics;
using Drakkar.Observability.Metrics;

namespace Drakkar.Runtime.Tests.Observability;

/// <summary>
/// <c>/metrics</c> is rendered from the <c>Drakkar</c> meter's instruments (SPEC X1, X6); dashboards depend on every
/// name, label, HELP line and bucket of it staying as it was.
/// </summary>
public sealed class PrometheusExportTests
{
    [Fact]
    public void The_exposition_keeps_every_name_label_help_line_and_bucket_of_the_hand_written_registry()
    {
        using var metrics = Record(new DrakkarMetrics());

        // Captured from the hand-written registry this exporter replaced.
        Assert.Equal(Expected, metrics.Registry.Export());
    }

    [Fact]
    public void A_meter_listener_like_dotnet_counters_sees_every_metric_as_an_instrument_of_the_Drakkar_meter()
    {
        using var metrics = Record(new DrakkarMetrics());
        var seen = new Dictionary<string, Instrument>();
        var values = new List<(string Name, double Value, string Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name != "Drakkar" || !ReferenceEquals(instrument.Meter, metrics.Registry.Meter)) return;
                seen[instrument.Name] = instrument;
                l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            lock (values) values.Add((instrument.Name, value, string.Join(",", tags.ToArray().Select(t => $"{t.Key}={t.Value}"))));
        });
        listener.Start();
        listener.RecordObservableInstruments();
        metrics.HandlerDuration.Observe(0.25, "on_task_complete");

        var families = Expected.Split('\n').Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]).ToArray();
        Assert.Equal(families.Order(), seen.Keys.Order());
        Assert.IsAssignableFrom<ObservableCounter<double>>(seen["drakkar_messages_consumed_total"]);
        Assert.IsAssignableFrom<ObservableGauge<double>>(seen["drakkar_executor_pool_active"]);
        Assert.IsType<Histogram<double>>(seen["drakkar_handler_duration_seconds"]);
        Assert.Equal("Messages consumed from the source topic", seen["drakkar_messages_consumed_total"].Description);
        Assert.Contains(("drakkar_messages_consumed_total", 3.0, "partition=1"), values);
        Assert.Contains(("drakkar_offset_lag", 0.25, "partition=3"), values);
        Assert.Contains(("drakkar_handler_duration_seconds", 0.25, "hook=on_task_complete"), values);
    }

    [Fact]
    public void A_sampled_gauge_reads_its_source_whenever_it_is_observed()
    {
        using var metrics = new DrakkarMetrics();
        var active = 0;
        metrics.PoolActive.SampleWith(() => active);

        active = 3;
        Assert.Contains("drakkar_executor_pool_active 3\n", metrics.Registry.Export(), StringComparison.Ordinal);
        active = 1;
        Assert.Contains("drakkar_executor_pool_active 1\n", metrics.Registry.Export(), StringComparison.Ordinal);
    }

    private static DrakkarMetrics Record(DrakkarMetrics metrics)
    {
        metrics.Worker.Set(1, "w\"1\\x", "1.2.3", "group\nA");
        metrics.MessagesConsumed.WithLabels("1").Add(3);
        metrics.MessagesConsumed.WithLabels("0").Increment();
        metrics.ExecutorTasks.Increment("completed");
        metrics.ExecutorTasks.Increment("completed");
        metrics.ExecutorTasks.Increment("timeout");
        metrics.PoolActive.Set(2);
        metrics.OffsetLag.Set(0.25, "3");
        metrics.ExecutorDuration.Observe(0.3);
        metrics.ExecutorDuration.Observe(0.5);
        metrics.ExecutorDuration.Observe(1000);
        metrics.SinkDeliverDuration.Observe(0.002, "kafka", "results");
        metrics.SinkDeliverDuration.Observe(0.001, "redis", "cache");
        metrics.SinkDeliverDuration.Observe(7, "kafka", "results");
        metrics.HandlerDuration.Observe(0.05, "arrange");
        metrics.SinkCircuitOpen.Set(0.5, "http", "hook");
        return metrics;
    }

    private const string Expected = """
# HELP drakkar_worker_info Worker instance identity and version (value is always 1)
# TYPE drakkar_worker_info gauge
drakkar_worker_info{worker_id="w\"1\\x",version="1.2.3",consumer_group="group\nA"} 1
# HELP drakkar_messages_consumed_total Messages consumed from the source topic
# TYPE drakkar_messages_consumed_total counter
drakkar_messages_consumed_total{partition="0"} 1
drakkar_messages_consumed_total{partition="1"} 3
# HELP drakkar_message_decode_errors_total Message values that failed to decode as the handler's input type
# TYPE drakkar_message_decode_errors_total counter
drakkar_message_decode_errors_total 0
# HELP drakkar_executor_tasks_total Executor task attempts by outcome
# TYPE drakkar_executor_tasks_total counter
drakkar_executor_tasks_total{status="completed"} 2
drakkar_executor_tasks_total{status="timeout"} 1
# HELP drakkar_executor_duration_seconds Executor task duration in seconds
# TYPE drakkar_executor_duration_seconds histogram
drakkar_executor_duration_seconds_bucket{le="0.1"} 0
drakkar_executor_duration_seconds_bucket{le="0.5"} 2
drakkar_executor_duration_seconds_bucket{le="1"} 2
drakkar_executor_duration_seconds_bucket{le="2"} 2
drakkar_executor_duration_seconds_bucket{le="5"} 2
drakkar_executor_duration_seconds_bucket{le="10"} 2
drakkar_executor_duration_seconds_bucket{le="30"} 2
drakkar_executor_duration_seconds_bucket{le="60"} 2
drakkar_executor_duration_seconds_bucket{le="120"} 2
drakkar_executor_duration_seconds_bucket{le="300"} 2
drakkar_executor_duration_seconds_bucket{le="+Inf"} 3
drakkar_executor_duration_seconds_sum 1000.8
drakkar_executor_duration_seconds_count 3
# HELP drakkar_executor_pool_active Executor slots running a process
# TYPE drakkar_executor_pool_active gauge
drakkar_executor_pool_active 2
# HELP drakkar_executor_timeouts_total Executor tasks killed for running past the timeout
# TYPE drakkar_executor_timeouts_total counter
drakkar_executor_timeouts_total 0
# HELP drakkar_executor_idle_slot_seconds_total Slot-seconds of executor idle time while messages or tasks wait (2 slots idle for 3 s add 6); sampled every 100 ms
# TYPE drakkar_executor_idle_slot_seconds_total counter
drakkar_executor_idle_slot_seconds_total 0
# HELP drakkar_consumer_idle_seconds_total Seconds with nothing queued or running and consumption not paused for backpressure; sampled every 100 ms
# TYPE drakkar_consumer_idle_seconds_total counter
drakkar_consumer_idle_seconds_total 0
# HELP drakkar_executor_processes Persistent executor processes alive, idle or serving a task
# TYPE drakkar_executor_processes gauge
drakkar_executor_processes 0
# HELP drakkar_executor_process_events_total Persistent executor processes started, failed to start, failed during a task, exited on their own, or recycled
# TYPE drakkar_executor_process_events_total counter
# HELP drakkar_executor_priority_fn_errors_total TaskPriority calls that threw (the task was queued with the lowest priority)
# TYPE drakkar_executor_priority_fn_errors_total counter
drakkar_executor_priority_fn_errors_total 0
# HELP drakkar_task_retries_total Task retries requested by OnError
# TYPE drakkar_task_retries_total counter
drakkar_task_retries_total 0
# HELP drakkar_tasks_precomputed_total Tasks completed without running a process
# TYPE drakkar_tasks_precomputed_total counter
drakkar_tasks_precomputed_total 0
# HELP drakkar_batch_duration_seconds Window duration from arrange to the last task final
# TYPE drakkar_batch_duration_seconds histogram
# HELP drakkar_partition_queue_size Messages queued in a partition pipeline, not yet arranged
# TYPE drakkar_partition_queue_size gauge
# HELP drakkar_offset_lag Consumed offset minus committed offset
# TYPE drakkar_offset_lag gauge
drakkar_offset_lag{partition="3"} 0.25
# HELP drakkar_backpressure_active 1 while consumption is paused for backpressure
# TYPE drakkar_backpressure_active gauge
drakkar_backpressure_active 0
# HELP drakkar_total_queued Queued messages plus unfinished tasks across partitions
# TYPE drakkar_total_queued gauge
drakkar_total_queued 0
# HELP drakkar_sink_payloads_in_flight Payloads handed to the sinks and not yet settled (delivered, dead-lettered or skipped), all instances
# TYPE drakkar_sink_payloads_in_flight gauge
drakkar_sink_payloads_in_flight 0
# HELP drakkar_assigned_partitions Partitions assigned to this worker
# TYPE drakkar_assigned_partitions gauge
drakkar_assigned_partitions 0
# HELP drakkar_consumer_errors_total Errors reported by the Kafka consumer
# TYPE drakkar_consumer_errors_total counter
drakkar_consumer_errors_total 0
# HELP drakkar_offsets_committed_total Offset commits
# TYPE drakkar_offsets_committed_total counter
# HELP drakkar_rebalance_events_total Rebalance events
# TYPE drakkar_rebalance_events_total counter
# HELP drakkar_rebalance_partitions_total Partitions assigned, revoked or lost
# TYPE drakkar_rebalance_partitions_total counter
# HELP drakkar_rebalance_duration_seconds Time spent handling a rebalance event (a revoke drains and commits)
# TYPE drakkar_rebalance_duration_seconds histogram
# HELP drakkar_kafka_transactions_total Exactly-once transactions (kafka.exactly_once), by outcome: committed or aborted
# TYPE drakkar_kafka_transactions_total counter
# HELP drakkar_handover_redo_messages_total Messages finished here but left uncommitted at a handover (revoke, lost, stop): the next owner processes them again
# TYPE drakkar_handover_redo_messages_total counter
# HELP drakkar_sink_deliver_duration_seconds Sink delivery duration
# TYPE drakkar_sink_deliver_duration_seconds histogram
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="0.001"} 0
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="0.005"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="0.01"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="0.05"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="0.1"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="0.5"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="1"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="5"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="10"} 2
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="30"} 2
drakkar_sink_deliver_duration_seconds_bucket{sink_type="kafka",sink_name="results",le="+Inf"} 2
drakkar_sink_deliver_duration_seconds_sum{sink_type="kafka",sink_name="results"} 7.002
drakkar_sink_deliver_duration_seconds_count{sink_type="kafka",sink_name="results"} 2
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="0.001"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="0.005"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="0.01"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="0.05"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="0.1"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="0.5"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="1"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="5"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="10"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="30"} 1
drakkar_sink_deliver_duration_seconds_bucket{sink_type="redis",sink_name="cache",le="+Inf"} 1
drakkar_sink_deliver_duration_seconds_sum{sink_type="redis",sink_name="cache"} 0.001
drakkar_sink_deliver_duration_seconds_count{sink_type="redis",sink_name="cache"} 1
# HELP drakkar_sink_deliver_errors_total Sink delivery failures
# TYPE drakkar_sink_deliver_errors_total counter
# HELP drakkar_sink_payloads_delivered_total Payloads delivered
# TYPE drakkar_sink_payloads_delivered_total counter
# HELP drakkar_sink_delivery_retries_total Delivery retries
# TYPE drakkar_sink_delivery_retries_total counter
# HELP drakkar_sink_deliveries_skipped_total Payloads skipped by OnDeliveryError
# TYPE drakkar_sink_deliveries_skipped_total counter
# HELP drakkar_sink_dlq_messages_total Payloads written to the DLQ
# TYPE drakkar_sink_dlq_messages_total counter
# HELP drakkar_dlq_send_failures_total Failed DLQ writes (retried, never dropped)
# TYPE drakkar_dlq_send_failures_total counter
drakkar_dlq_send_failures_total 0
# HELP drakkar_dlq_blocked_partitions Source partitions paused because the DLQ refuses their record (too large, not authorized)
# TYPE drakkar_dlq_blocked_partitions gauge
drakkar_dlq_blocked_partitions 0
# HELP drakkar_sink_circuit_open Circuit state: 0 closed, 0.5 half-open, 1 open
# TYPE drakkar_sink_circuit_open gauge
drakkar_sink_circuit_open{sink_type="http",sink_name="hook"} 0.5
# HELP drakkar_sink_circuit_trips_total Times the circuit opened
# TYPE drakkar_sink_circuit_trips_total counter
# HELP drakkar_handler_duration_seconds Handler hook duration
# TYPE drakkar_handler_duration_seconds histogram
drakkar_handler_duration_seconds_bucket{hook="arrange",le="0.001"} 0
drakkar_handler_duration_seconds_bucket{hook="arrange",le="0.005"} 0
drakkar_handler_duration_seconds_bucket{hook="arrange",le="0.01"} 0
drakkar_handler_duration_seconds_bucket{hook="arrange",le="0.05"} 1
drakkar_handler_duration_seconds_bucket{hook="arrange",le="0.1"} 1
drakkar_handler_duration_seconds_bucket{hook="arrange",le="0.5"} 1
drakkar_handler_duration_seconds_bucket{hook="arrange",le="1"} 1
drakkar_handler_duration_seconds_bucket{hook="arrange",le="5"} 1
drakkar_handler_duration_seconds_bucket{hook="arrange",le="10"} 1
drakkar_handler_duration_seconds_bucket{hook="arrange",le="30"} 1
drakkar_handler_duration_seconds_bucket{hook="arrange",le="+Inf"} 1
drakkar_handler_duration_seconds_sum{hook="arrange"} 0.05
drakkar_handler_duration_seconds_count{hook="arrange"} 1
# HELP drakkar_periodic_task_runs_total Periodic method runs
# TYPE drakkar_periodic_task_runs_total counter
# HELP drakkar_periodic_task_duration_seconds Periodic method duration
# TYPE drakkar_periodic_task_duration_seconds histogram
# HELP drakkar_recorder_dropped_events_total Flight-recorder events not stored: buffer_full (the pipeline never waits for the recorder) or write_failed (a batch failed debug.max_flush_retries times)
# TYPE drakkar_recorder_dropped_events_total counter

""";
}
