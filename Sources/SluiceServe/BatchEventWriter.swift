public import SluiceHost
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The child's end of the event stream: a `BatchListener` that writes each event as one `BatchEventLine` to a file
/// descriptor its server handed it (`sluice run --events-fd N`).
///
/// A write that fails means the server went away (EPIPE: it was killed, it cannot stop this process any more): the
/// stream ends and the process asks itself to stop gracefully (SIGTERM, as the server would have), so that no
/// pipeline runs on unsupervised; the next start of the server resumes it from its checkpoint. Writes happen on the scheduling thread, one line per
/// `write(2)` call, so a line is never interleaved (pipe writes up to PIPE_BUF are atomic; longer ones have a single
/// writer here).
public final class BatchEventWriter: BatchListener, Sendable {
    private let descriptor: Int32
    private let broken = Mutex(false)

    /// Writes the `hello` line at once: the pipeline is loaded and about to run.
    public init(descriptor: Int32, pipeline: String, batchIntervalMilliseconds: Int) {
        self.descriptor = descriptor
        var hello = BatchEventLine(event: .hello, pipeline: pipeline)
        hello.batchIntervalMilliseconds = batchIntervalMilliseconds
        hello.pid = getpid()
        write(hello)
    }

    public func batchStarted(_ event: BatchStarted) { write(BatchEventLine(event)) }
    public func batchCompleted(_ event: BatchCompleted) { write(BatchEventLine(event)) }
    public func batchFailed(_ event: BatchFailed) { write(BatchEventLine(event)) }

    private func write(_ line: BatchEventLine) {
        guard !broken.withLock({ $0 }), var bytes = try? JSONEncoder().encode(line) else { return }
        bytes.append(0x0A)
        let complete = bytes.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
        if !complete {
            let first = broken.withLock { broken in
                defer { broken = true }
                return !broken
            }
            if first { kill(getpid(), SIGTERM) }
        }
    }
}
