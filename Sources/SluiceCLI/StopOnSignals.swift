import Foundation
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
    private let progress: ProgressReporter
    /// The signal that asked for the stop.
    private let first = Mutex<UnixSignal?>(nil)

    /// The name of the signal that asked for the stop, for the summary line.
    var stoppedBy: String { first.withLock { $0 } == .sigterm ? "SIGTERM" : "SIGINT" }

    /// Installs the handlers at once, so that no signal between here and `watch` ends the process.
    init(timeout: Double, progress: ProgressReporter) async {
        signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        self.timeout = timeout
        self.progress = progress
    }

    /// Handles signals until the task is cancelled.
    func watch(_ group: ServiceGroup) async {
        for await signal in signals {
            let isFirst = first.withLock { first in
                defer { first = first ?? signal }
                return first == nil
            }
            guard isFirst else {
                progress.message("sluice: second signal: exiting now; the batch in flight is not committed\n")
                _exit(130)
            }
            progress.message("sluice: stopping after the batch in flight (press Ctrl-C again to exit at once)\n")
            let timeout = timeout
            let progress = progress
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                progress.message("sluice: graceful shutdown took longer than \(timeout) s: exiting\n")
                _exit(1)
            }
            await group.triggerGracefulShutdown()
        }
    }
}
