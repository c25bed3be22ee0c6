import SluiceSDK

/// How a sink's transient failure (`SLUICE_RETRY`) travels: the error says it may be retried, and the sink may
/// listen for each replay so the operator sees every retry when it happens, not only when the executor gives up.

/// A sink that is told each time the executor is about to replay a batch it asked to retry.
public protocol SinkRetryListener {
    /// Batch `info` failed with `error` and is replayed from `begin` after `afterMilliseconds`, as attempt `attempt`
    /// of at most `attempts`.
    func willRetry(_ info: BatchInfo, attempt: Int, of attempts: Int, afterMilliseconds: Int, because error: any Error)
}

/// An error that may ask for a retry (a sink's RETRY).
public protocol RetryableError: Error {
    var isRetryable: Bool { get }
}
