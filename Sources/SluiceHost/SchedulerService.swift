import Foundation
import ServiceLifecycle
import Synchronization

/// A scheduler as a swift-service-lifecycle `Service`: `run()` drives the batch loop on a thread of its own (batches
/// block on plugin calls and use `concurrentPerform`, so they stay off the cooperative pool) and turns graceful
/// shutdown or cancellation into `requestStop`: the batch in flight finishes and commits, then `run()` returns. What
/// the run did is in `summary` afterwards.
public final class SchedulerService: Service, Sendable {
    public let scheduler: PipelineScheduler
    private let result = Mutex<RunSummary?>(nil)

    public init(_ scheduler: PipelineScheduler) { self.scheduler = scheduler }

    /// How the run ended, once `run()` has returned.
    public var summary: RunSummary? { result.withLock { $0 } }

    public func run() async {
        let scheduler = scheduler
        let summary = await withTaskCancellationOrGracefulShutdownHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<RunSummary, Never>) in
                let thread = Thread { continuation.resume(returning: scheduler.runBatches()) }
                thread.name = "sluice-scheduler"
                thread.start()
            }
        } onCancelOrGracefulShutdown: {
            scheduler.requestStop()
        }
        result.withLock { $0 = summary }
    }
}
