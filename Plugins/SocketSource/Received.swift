import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the receiving thread shares with the engine's calls.
struct Received: Sendable {
    /// Lines received and not yet forgotten.
    var lines: LineBuffer
    /// The write-ahead log, in a checkpointed pipeline.
    var wal: WriteAheadLog?
    /// Why the log stopped working, reported by the next `available`.
    var failure: String?

    /// The end of what a batch may take: every line when there is no log, the synced ones when there is.
    var offered: UInt64 { wal?.durableEnd ?? lines.range.upperBound }

    init(lines: LineBuffer, wal: WriteAheadLog?) {
        self.lines = lines
        self.wal = wal
    }

    /// Takes a received line: in memory, and staged for the log.
    mutating func add(_ line: UnsafeRawBufferPointer) {
        lines.append(line)
        wal?.stage(line)
    }

    /// Writes the staged lines to the log, and returns why when that fails. A failed write keeps them staged (and in
    /// memory, but not offered: a batch takes only logged lines) for the next attempt; a failed fsync also stops the
    /// pipeline at its next batch.
    mutating func flush() -> String? {
        guard let wal else { return nil }
        do throws(WriteAheadLog.FlushError) {
            try wal.flush()
            return nil
        } catch {
            if !error.retryable && failure == nil { failure = error.description }
            return error.description
        }
    }

    /// Makes the logged lines durable; a failure stops the pipeline at its next batch.
    mutating func sync() {
        guard let wal, failure == nil else { return }
        do { try wal.sync() } catch { failure = "\(error)" }
    }

    /// Whether lines were written to the log but not synced.
    var unsynced: Bool { wal.map { $0.durableEnd < $0.nextOffset } ?? false }
}
