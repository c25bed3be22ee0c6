import Foundation
import Logging
import SluiceCore

#if canImport(Glibc)
import Glibc
#endif

/// How batch progress is shown on standard error.
public enum ProgressMode: String, Sendable, CaseIterable {
    /// A live line on a terminal, plain lines otherwise.
    case auto
    /// One live, rewritten line (for terminals).
    case live
    /// One line per batch (for logs and pipes).
    case plain
    /// Nothing but warnings and errors.
    case none
}

/// Writes progress lines and messages to standard error without tearing: a live line is cleared before any
/// other output (including sinks writing to the same terminal) and redrawn after. As a `BatchListener` it shows one
/// line per completed batch; the live line is taken down while a batch runs, since sinks may write to the terminal.
public final class ProgressReporter: BatchListener, @unchecked Sendable {  // all state is guarded by `lock`
    private let lock = NSLock()
    private let live: Bool
    private let enabled: Bool
    private var liveLineShown = false
    private var lastLine = ""
    private var totalRecords = 0
    private var batches = 0
    private let started = Date()
    /// Where the warning about discarded records goes (without one: a `sluice: ` line). Set once the logging system
    /// is up, which itself writes through this reporter.
    private var logger: Logger?

    public init(mode: ProgressMode) {
        switch mode {
        case .auto:
            live = isatty(2) == 1
            enabled = true
        case .live:
            live = true
            enabled = true
        case .plain:
            live = false
            enabled = true
        case .none:
            live = false
            enabled = false
        }
    }

    /// Writes `text` (which should end with a newline) to standard error, around the live line.
    public func message(_ text: String) {
        lock.withLock {
            clearLive()
            writeError(text)
            redrawLive()
        }
    }

    /// Sends the warning about discarded records to `logger` from now on.
    public func logDiscards(to logger: Logger) { lock.withLock { self.logger = logger } }

    /// Removes the live line so that something else can write to the terminal.
    public func suspend() { lock.withLock { clearLive() } }

    /// Shows the live line again.
    public func resume() { lock.withLock { redrawLive() } }

    public func batchStarted(_ event: BatchStarted) { suspend() }

    public func batchFailed(_ event: BatchFailed) { resume() }

    /// Reports one finished batch, after what it discarded.
    public func batchCompleted(_ report: BatchCompleted) {
        if report.discarded > 0, let reason = report.firstDiscardReason {
            let text = "batch \(report.id): \(report.discarded) records discarded; first: \(reason)"
            if let logger = lock.withLock({ logger }) { logger.warning("\(text)") } else { message("sluice: \(text)\n") }
        }
        lock.withLock {
            totalRecords += report.records
            batches += 1
            guard enabled else { return }
            let time = Self.clockTime(report.timeMilliseconds)
            var line =
                "batch \(report.id) at \(time): \(report.records) records, scheduling delay "
                + "\(Self.ms(report.schedulingDelayMilliseconds)), processing \(Self.ms(report.processingMilliseconds)), "
                + "total delay \(Self.ms(report.totalDelayMilliseconds))"
            if report.discarded > 0 { line += ", \(report.discarded) discarded" }
            if let limit = report.rateLimit { line += ", rate limit \(Int(limit.rounded())) records/s" }
            if live {
                let elapsed = max(Date().timeIntervalSince(started), 0.001)
                lastLine = line + " | \(totalRecords) records in \(batches) batches, "
                    + "\(Int(Double(totalRecords) / elapsed)) records/s"
                clearLive()
                redrawLive()
            } else {
                writeError(line + "\n")
            }
        }
    }

    /// Ends the live line (leaving it on screen) before the final summary (nil: the summary goes elsewhere).
    public func finish(_ summary: String?) {
        lock.withLock {
            if live && liveLineShown {
                writeError("\n")
                liveLineShown = false
            }
            lastLine = ""
            if enabled, let summary { writeError(summary + "\n") }
        }
    }

    public var recordsSoFar: Int { lock.withLock { totalRecords } }

    private func clearLive() {
        if live && liveLineShown {
            writeError("\r\u{1B}[K")
            liveLineShown = false
        }
    }

    private func redrawLive() {
        guard live, enabled, !lastLine.isEmpty else { return }
        let width = Self.terminalWidth()
        let line = lastLine.count > width ? String(lastLine.prefix(width - 1)) : lastLine
        writeError(line)
        liveLineShown = true
    }

    static func ms(_ value: Double) -> String {
        value < 10 ? String(format: "%.1f ms", value) : "\(Int(value.rounded())) ms"
    }

    static func clockTime(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return String(format: "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min, parts.tm_sec, Int(milliseconds % 1000))
    }

    static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 20 { return Int(size.ws_col) }
        return 120
    }
}

/// Writes all of `text` to standard error.
func writeError(_ text: String) {
    var text = text
    text.withUTF8 { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
