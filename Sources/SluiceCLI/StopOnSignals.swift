import Foundation
import Logging
import ServiceLifecycle
import SluiceHost
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `sluice run`'s answer to SIGINT and SIGTERM: the first asks the service group to shut down gracefully (the batch
/// in flight finishes and commits) and arms a watchdog that exits 1 once `timeout` has passed; a second exits 130 at
/// once, leaving the batch in flight for the next start to replay. Process-wide by nature, so it lives in the command
/// line, never in the scheduler.
final class StopOnSignals: Sendable {
    private let signals: UnixSignalsSequence
    private let timeout: Double
    private let logger: Logger
    /// The signal that asked for the stop.
    private let first = Mutex<UnixSignal?>(nil)

    /// The name of the signal that asked for the stop, for the summary line.
    var stoppedBy: String { first.withLock { $0 } == .sigterm ? "SIGTERM" : "SIGINT" }

    /// Installs the handlers at once, so that no signal between here and `watch` ends the process.
    init(timeout: Double, logger: Logger) async {
        signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        self.timeout = timeout
        self.logger = logger
    }

    /// Handles signals until the task is cancelled.
    func watch(_ group: ServiceGroup) async {
        for await signal in signals {
            let isFirst = first.withLock { first in
                defer { first = first ?? signal }
                return first == nil
            }
            guard isFirst else {
                logger.warning("second signal: exiting now; the batch in flight is not committed")
                _exit(130)
            }
            logger.notice("stopping after the batch in flight (press Ctrl-C again to exit at once)")
            let timeout = timeout
            let logger = logger
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                logger.error("graceful shutdown took longer than \(timeout) s: exiting")
                _exit(1)
            }
            await group.triggerGracefulShutdown()
        }
    }
}
