import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The socket source's memory under a sender faster than the pipeline: `max_buffered_bytes` must bound what the
/// sluice process holds, not only what the source counts as uncommitted.
@Suite(.timeLimit(.minutes(3)))
struct SocketMemoryBoundTests {
    /// A TCP server that, once released, sends `count` lines of `lineBytes` bytes (`<seq> xxx…\n`) as fast as the
    /// connection takes them, counting the bytes the kernel accepted.
    final class Feed: @unchecked Sendable {  // `sent`, `connected` and `finished` are guarded by `lock`
        let port: UInt16
        private let listener: Int32
        private let lock = NSLock()
        private let go = DispatchSemaphore(value: 0)
        private var sent = 0
        private var connected = false
        private var finished = false
        private var client: Int32 = -1

        init(count: Int, lineBytes: Int) throws {
            (listener, port) = try Support.listenOnLoopback()
            Thread.detachNewThread { [self] in serve(count: count, lineBytes: lineBytes) }
        }

        var bytesSent: Int { lock.withLock { sent } }
        var isConnected: Bool { lock.withLock { connected } }
        var isFinished: Bool { lock.withLock { finished } }

        /// Starts sending.
        func release() { go.signal() }

        static func line(_ seq: Int, bytes: Int) -> [UInt8] {
            let head = Array("\(seq) ".utf8)
            return head + [UInt8](repeating: UInt8(ascii: "x"), count: bytes - head.count - 1) + [10]
        }

        private func serve(count: Int, lineBytes: Int) {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            // A small send buffer, so that what the kernel holds on the sending side is small beside the bound and
            // the sender stalls soon after the source stops reading.
            var size: Int32 = 256 * 1024
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            lock.withLock {
                connected = true
                client = fd
            }
            go.wait()
            for seq in 0..<count {
                let bytes = Self.line(seq, bytes: lineBytes)
                let complete = bytes.withUnsafeBytes { raw -> Bool in
                    var offset = 0
                    while offset < raw.count {
                        let written = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                        if written <= 0 { return false }
                        offset += written
                        lock.withLock { sent += written }
                    }
                    return true
                }
                if !complete { break }
            }
            lock.withLock { finished = true }
        }

        /// Closes the listener and the connection (after the run: an open connection is a live feed).
        func stop() {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
            lock.withLock {
                if client >= 0 { close(client) }
                client = -1
            }
        }
    }

    /// The resident set of `pid` in bytes, nil once the process is gone: the second field of /proc/PID/statm, in
    /// pages (the figure /proc/PID/status shows as VmRSS).
    static func residentBytes(_ pid: pid_t) -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }

    /// The records of every batch the progress lines report (`batch N at …: R records, …`), summed.
    static func reportedRecords(_ stderr: String) -> Int {
        stderr.matches(of: #/(?m)^batch \d+ at \S+: (\d+) records/#).compactMap { Int($0.1) }.reduce(0, +)
    }

    /// The sender writes 40 MiB of 16 KiB lines as fast as TCP takes them; the pipeline takes at most 512 KiB every
    /// 200 ms (2.5 MiB/s, well under what even a debug build's source reads, about 7 MiB/s on this machine's loaded
    /// two cores). The source must stop reading at its 8 MiB bound, so the sender stalls, and the process must stay
    /// within its resident size before data + the bound + one batch + a stated allowance the whole time, not only
    /// while the first 8 MiB wait. Then every line arrives exactly once.
    ///
    /// How it would fail: lines the engine committed were kept until 65,536 of them filled a chunk of the source's
    /// buffer (`LineBuffer`), and the bound counts only uncommitted lines; with 16 KiB lines a chunk is 1 GiB, so the
    /// source held every line received so far (before the fix, which starts a chunk every MiB, a run with a 16 MiB
    /// bound reached 181.5 MiB resident against a limit of 79.9 MiB; this test's run, 113.9 MiB against 78.6).
    /// Without the byte bound at all the source reads the whole 40 MiB at once.
    @Test func aFullBufferHoldsTheProcessUnderTheByteBoundPlusOneBatch() throws {
        let lineBytes = 16 * 1024
        let lines = 5 * 512  // 40 MiB
        let bound = 8 << 20
        let linesPerBatch = 32  // 512 KiB
        let batchBytes = linesPerBatch * lineBytes
        // What else may grow once data flows: the files sink's 1 MiB write buffer, the batch builder's capacity, one
        // partly committed 1 MiB chunk of the source, the receiver's 256 KiB read buffer, and the allocator's slack
        // (freed chunks kept by glibc's per-thread arenas: the receiving thread allocates them, the batch thread
        // frees them). Measured with the fix: flat at 20 MiB over the baseline once the buffer is full, against
        // 64 MiB over it and rising with every batch without the fix.
        let allowance = 20 << 20
        let feed = try Feed(count: lines, lineBytes: lineBytes)
        defer { feed.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-socket-memory")
        defer { try? FileManager.default.removeItem(at: work) }
        try """
            name: socket-memory
            batch_interval: 200ms
            sources:
              feed:
                plugin: socket
                max_records_per_partition: \(linesPerBatch)
                config: {port: \(feed.port), max_buffered_bytes: \(bound), max_buffered_records: 10000000}
            sinks:
              out: {from: feed, plugin: files, config: {prefix: out/lines, fsync: false}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        let child = try Support.Child(Support.sluice, ["run", "pipeline.yaml", "--progress", "plain"], directory: work)
        let pid = child.process.processIdentifier

        // The resident size before data: connected, plugins loaded, two empty batches run.
        let ready = child.waitFor(timeout: 30) { feed.isConnected && ChaosTests.lastReportedBatch(child.stderr) >= 1 }
        try #require(ready, "the source did not connect or no batch ran; stderr:\n\(child.stderr)")
        let baseline = try #require(Self.residentBytes(pid))
        let limit = baseline + bound + batchBytes + allowance
        feed.release()

        // Until every line is committed: sample the resident size, and watch for the sender stalling — no byte
        // accepted for 100 ms while lines are left to send and more than the bound is sent and not yet committed —:
        // TCP holding it because the source stopped reading at its bound. (Each commit lets the source read 512 KiB
        // more, so a stall lasts at most about one interval.)
        var highest = baseline
        var stalledAt: Int?
        var lastSent = -1
        var unchangedSince = Date()
        let deadline = Date().addingTimeInterval(120)
        while true {
            let committed = Self.reportedRecords(child.stderr)
            if committed >= lines { break }
            try #require(Date() < deadline, "not every line was committed within 120 s; stderr:\n\(child.stderr)")
            try #require(child.process.isRunning, "sluice ended early; stderr:\n\(child.stderr)")
            if let resident = Self.residentBytes(pid) { highest = max(highest, resident) }
            let sent = feed.bytesSent
            if sent != lastSent {
                lastSent = sent
                unchangedSince = Date()
            } else if stalledAt == nil && !feed.isFinished && Date().timeIntervalSince(unchangedSince) >= 0.1
                && sent - committed * lineBytes >= bound
            {
                stalledAt = sent
            }
            usleep(10_000)
        }

        let mib = { (bytes: Int) in String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        let stalled = try #require(stalledAt, "the sender never stalled with a full buffer: the source kept reading past its bound")
        #expect(
            highest <= limit,
            "resident size reached \(mib(highest)): over \(mib(baseline)) before data + \(mib(bound)) bound + \(mib(batchBytes)) batch + \(mib(allowance)) allowance"
        )
        print(
            "SocketMemoryBoundTests: resident \(mib(baseline)) before data, at most \(mib(highest)) (limit \(mib(limit))); "
                + "the sender first stalled after \(mib(stalled))"
        )

        kill(pid, SIGINT)
        let result = child.wait(timeout: 60)
        #expect(result.status == 0, "stderr:\n\(result.stderr)")
        let records = Support.sinkRecords(work.appendingPathComponent("out"), prefix: "lines")
        #expect(records.count == lines, "\(records.count) records for \(lines) lines sent")
        var seen = [Bool](repeating: false, count: lines)
        for record in records {
            let seq = Int(record.prefix { $0 != " " }) ?? -1
            let intact = record.utf8.count == lineBytes - 1 && Array(record.utf8) == Array(Feed.line(max(seq, 0), bytes: lineBytes).dropLast())
            guard (0..<lines).contains(seq), !seen[seq], intact else {
                Issue.record("record \(record.prefix(24))… is out of range, doubled or damaged")
                return
            }
            seen[seq] = true
        }
        #expect(seen.allSatisfy { $0 }, "every line arrived")
    }
}
