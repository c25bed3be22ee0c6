import Logging

/// Logs each batch as a record with its figures as metadata (`batch`, `records`, the delays in milliseconds): what
/// a log shipper reads where a terminal shows the progress line. `sluice run` adds it with `--log-format json`.
public final class BatchLogListener: BatchListener {
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func batchStarted(_ event: BatchStarted) {
        logger.debug(
            "batch \(event.id) started",
            metadata: [
                "batch": .stringConvertible(event.id), "batch_time_ms": .stringConvertible(event.timeMilliseconds),
                "replay": .string("\(event.isReplay)"),
                "scheduling_delay_ms": .stringConvertible(event.schedulingDelayMilliseconds),
            ]
        )
    }

    public func batchCompleted(_ event: BatchCompleted) {
        var metadata: Logger.Metadata = [
            "batch": .stringConvertible(event.id), "batch_time_ms": .stringConvertible(event.timeMilliseconds),
            "records": .stringConvertible(event.records),
            "scheduling_delay_ms": .stringConvertible(event.schedulingDelayMilliseconds),
            "processing_ms": .stringConvertible(event.processingMilliseconds),
            "total_delay_ms": .stringConvertible(event.totalDelayMilliseconds),
        ]
        if event.discarded > 0 { metadata["discarded"] = .stringConvertible(event.discarded) }
        logger.info("batch \(event.id) completed: \(event.records) records", metadata: metadata)
    }

    /// The failure itself is the run's error, logged once when the run ends; this says which batch it was.
    public func batchFailed(_ event: BatchFailed) {
        logger.debug("batch \(event.id) failed", metadata: ["batch": .stringConvertible(event.id)])
    }
}
