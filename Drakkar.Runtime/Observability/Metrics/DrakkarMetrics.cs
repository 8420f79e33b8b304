namespace Drakkar.Observability.Metrics;

/// <summary>
/// The worker's metrics, with Python Drakkar's names and labels: instruments of a <c>Drakkar</c> meter
/// (<see cref="MetricRegistry"/>), which <c>/metrics</c>, dotnet-counters and OpenTelemetry all read.
/// </summary>
internal sealed class DrakkarMetrics : IDisposable
{
    private static readonly double[] DurationBuckets = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];
    private static readonly double[] FastBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30];

    public DrakkarMetrics()
    {
        var r = Registry;
        // Python Drakkar's Info metric 'drakkar_worker', exposed by prometheus_client as drakkar_worker_info.
        Worker = r.Gauge("drakkar_worker_info", "Worker instance identity and version (value is always 1)", "worker_id", "version", "consumer_group");
        MessagesConsumed = r.Counter("drakkar_messages_consumed_total", "Messages consumed from the source topic", "partition");
        DecodeErrors = r.Counter("drakkar_message_decode_errors_total", "Message values that failed to decode as the handler's input type");
        ExecutorTasks = r.Counter("drakkar_executor_tasks_total", "Executor task attempts by outcome", "status");
        ExecutorDuration = r.Histogram("drakkar_executor_duration_seconds", "Executor task duration in seconds", DurationBuckets);
        PoolActive = r.Gauge("drakkar_executor_pool_active", "Executor slots running a process");
        Timeouts = r.Counter("drakkar_executor_timeouts_total", "Executor tasks killed for running past the timeout");
        ExecutorIdleSlotSeconds = r.Counter("drakkar_executor_idle_slot_seconds_total",
            "Slot-seconds of executor idle time while messages or tasks wait (2 slots idle for 3 s add 6); sampled every 100 ms");
        ConsumerIdleSeconds = r.Counter("drakkar_consumer_idle_seconds_total",
            "Seconds with nothing queued or running and consumption not paused for backpressure; sampled every 100 ms");
        ExecutorProcesses = r.Gauge("drakkar_executor_processes", "Persistent executor processes alive, idle or serving a task");
        ExecutorProcessEvents = r.Counter("drakkar_executor_process_events_total",
            "Persistent executor processes started, failed to start, failed during a task, exited on their own, or recycled", "event");
        PriorityErrors = r.Counter("drakkar_executor_priority_fn_errors_total", "TaskPriority calls that threw (the task was queued with the lowest priority)");
        TaskRetries = r.Counter("drakkar_task_retries_total", "Task retries requested by OnError");
        TasksPrecomputed = r.Counter("drakkar_tasks_precomputed_total", "Tasks completed without running a process");
        BatchDuration = r.Histogram("drakkar_batch_duration_seconds", "Window duration from arrange to the last task final", DurationBuckets);
        PartitionQueueSize = r.Gauge("drakkar_partition_queue_size", "Messages queued in a partition pipeline, not yet arranged", "partition");
        OffsetLag = r.Gauge("drakkar_offset_lag", "Consumed offset minus committed offset", "partition");
        BackpressureActive = r.Gauge("drakkar_backpressure_active", "1 while consumption is paused for backpressure");
        TotalQueued = r.Gauge("drakkar_total_queued", "Queued messages plus unfinished tasks across partitions");
        SinkPayloadsInFlight = r.Gauge("drakkar_sink_payloads_in_flight",
            "Payloads handed to the sinks and not yet settled (delivered, dead-lettered or skipped), all instances");
        AssignedPartitions = r.Gauge("drakkar_assigned_partitions", "Partitions assigned to this worker");
        ConsumerErrors = r.Counter("drakkar_consumer_errors_total", "Errors reported by the Kafka consumer");
        OffsetsCommitted = r.Counter("drakkar_offsets_committed_total", "Offset commits", "partition");
        RebalanceEvents = r.Counter("drakkar_rebalance_events_total", "Rebalance events", "type");
        RebalancePartitions = r.Counter("drakkar_rebalance_partitions_total", "Partitions assigned, revoked or lost", "type");
        RebalanceDuration = r.Histogram("drakkar_rebalance_duration_seconds", "Time spent handling a rebalance event (a revoke drains and commits)", FastBuckets, "type");
        KafkaTransactions = r.Counter("drakkar_kafka_transactions_total", "Exactly-once transactions (kafka.exactly_once), by outcome: committed or aborted", "outcome");
        HandoverRedo = r.Counter("drakkar_handover_redo_messages_total", "Messages finished here but left uncommitted at a handover (revoke, lost, stop): the next owner processes them again", "partition");
        SinkDeliverDuration = r.Histogram("drakkar_sink_deliver_duration_seconds", "Sink delivery duration", FastBuckets, "sink_type", "sink_name");
        SinkDeliverErrors = r.Counter("drakkar_sink_deliver_errors_total", "Sink delivery failures", "sink_type", "sink_name");
        SinkPayloadsDelivered = r.Counter("drakkar_sink_payloads_delivered_total", "Payloads delivered", "sink_type", "sink_name");
        SinkDeliveryRetries = r.Counter("drakkar_sink_delivery_retries_total", "Delivery retries", "sink_type", "sink_name");
        SinkDeliveriesSkipped = r.Counter("drakkar_sink_deliveries_skipped_total", "Payloads skipped by OnDeliveryError", "sink_type", "sink_name");
        SinkDlqMessages = r.Counter("drakkar_sink_dlq_messages_total", "Payloads written to the DLQ", "sink_type", "sink_name");
        DlqSendFailures = r.Counter("drakkar_dlq_send_failures_total", "Failed DLQ writes (retried, never dropped)");
        DlqBlockedPartitions = r.Gauge("drakkar_dlq_blocked_partitions", "Source partitions paused because the DLQ refuses their record (too large, not authorized)");
        SinkCircuitOpen = r.Gauge("drakkar_sink_circuit_open", "Circuit state: 0 closed, 0.5 half-open, 1 open", "sink_type", "sink_name");
        SinkCircuitTrips = r.Counter("drakkar_sink_circuit_trips_total", "Times the circuit opened", "sink_type", "sink_name");
        HandlerDuration = r.Histogram("drakkar_handler_duration_seconds", "Handler hook duration", FastBuckets, "hook");
        PeriodicRuns = r.Counter("drakkar_periodic_task_runs_total", "Periodic method runs", "name", "status");
        PeriodicDuration = r.Histogram("drakkar_periodic_task_duration_seconds", "Periodic method duration", FastBuckets, "name");
        RecorderEventsDropped = r.Counter("drakkar_recorder_dropped_events_total",
            "Flight-recorder events not stored: buffer_full (the pipeline never waits for the recorder) or write_failed (a batch failed debug.max_flush_retries times)", "reason");
    }

    /// <summary>Where pipeline events go besides the metrics: the flight recorder with <c>debug.enabled</c>, else nowhere.</summary>
    internal Diagnostics.IWorkerEvents Events { get; set; } = Diagnostics.IWorkerEvents.None;

    public MetricRegistry Registry { get; } = new();

    /// <summary>Ends the meter: listeners stop seeing this worker's instruments.</summary>
    public void Dispose() => Registry.Dispose();

    public Gauge Worker { get; }
    public Counter MessagesConsumed { get; }
    public Counter DecodeErrors { get; }
    public Counter ExecutorTasks { get; }
    public Histogram ExecutorDuration { get; }
    public Gauge PoolActive { get; }
    public Counter Timeouts { get; }
    public Counter ExecutorIdleSlotSeconds { get; }
    public Counter ConsumerIdleSeconds { get; }
    public Gauge ExecutorProcesses { get; }
    public Counter ExecutorProcessEvents { get; }
    public Counter PriorityErrors { get; }
    public Counter TaskRetries { get; }
    public Counter TasksPrecomputed { get; }
    public Histogram BatchDuration { get; }
    public Gauge PartitionQueueSize { get; }
    public Gauge OffsetLag { get; }
    public Gauge BackpressureActive { get; }
    public Gauge TotalQueued { get; }
    public Gauge SinkPayloadsInFlight { get; }
    public Gauge AssignedPartitions { get; }
    public Counter ConsumerErrors { get; }
    public Counter OffsetsCommitted { get; }
    public Counter RebalanceEvents { get; }
    public Counter RebalancePartitions { get; }
    public Histogram RebalanceDuration { get; }
    public Counter HandoverRedo { get; }
    public Counter KafkaTransactions { get; }
    public Histogram SinkDeliverDuration { get; }
    public Counter SinkDeliverErrors { get; }
    public Counter SinkPayloadsDelivered { get; }
    public Counter SinkDeliveryRetries { get; }
    public Counter SinkDeliveriesSkipped { get; }
    public Counter SinkDlqMessages { get; }
    public Counter DlqSendFailures { get; }
    public Gauge DlqBlockedPartitions { get; }
    public Gauge SinkCircuitOpen { get; }
    public Counter SinkCircuitTrips { get; }
    public Histogram HandlerDuration { get; }
    public Counter PeriodicRuns { get; }
    public Histogram PeriodicDuration { get; }
    public Counter RecorderEventsDropped { get; }
}
