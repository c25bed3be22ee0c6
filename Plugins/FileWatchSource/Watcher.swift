import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Discovery, run by the source's background thread; shares `state` with the readers.
final class Watcher: Sendable {
    let directory: String
    let glob: String
    let pollMilliseconds: Int32
    let context: PluginContext
    /// The number of partitions, as configured (never fewer than the index log holds: that is refused at start).
    let partitionCount: Int
    let state: Mutex<FileWatchSource.State>
    /// The inotify descriptor, or -1 when polling only.
    private let inotifyFD: Int32
    /// The durable index of what was read, when the host gives a state directory (checkpointed pipelines).
    private let log: IndexLog?

    /// The options a start needs, checked the same way at start and when `sluice validate` asks for a check only:
    /// a positive poll interval and a directory that exists.
    static func checkOptions(_ configuration: FileWatchSource.Configuration) throws {
        guard configuration.poll_interval_ms > 0 else {
            throw PluginError("configuration key 'poll_interval_ms': must be positive")
        }
        guard (1...maxPartitions).contains(configuration.partitions) else {
            throw PluginError("configuration key 'partitions': \(configuration.partitions) is not between 1 and \(maxPartitions)")
        }
        let directory = configuration.directory
        var info = stat()
        guard stat(directory, &info) == 0 else {
            throw PluginError("configuration key 'directory': '\(directory)' does not exist or cannot be read (\(errorText()))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw PluginError("configuration key 'directory': '\(directory)' is not a directory")
        }
    }

    /// The host's limit on a source's partitions (docs/pipeline.md, Limits).
    static let maxPartitions = 1024

    /// Refuses a partition this source does not have (the host asks only for those it offered; a harness may not).
    func checkPartition(_ partition: Int) throws {
        guard partition >= 0 && partition < partitionCount else {
            throw PluginError("partition \(partition) does not exist: this source has \(partitionCount)")
        }
    }

    init(configuration: FileWatchSource.Configuration, context: PluginContext) throws {
        self.context = context
        directory = configuration.directory
        glob = configuration.glob
        try Self.checkOptions(configuration)
        pollMilliseconds = Int32(min(configuration.poll_interval_ms, 3_600_000))
        var watchFD: Int32 = -1
        if configuration.use_inotify {
            let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            if fd >= 0 && inotify_add_watch(fd, directory, UInt32(IN_CLOSE_WRITE | IN_MOVED_TO)) >= 0 {
                watchFD = fd
            } else {
                if fd >= 0 { close(fd) }
                context.log(.info, "inotify unavailable for '\(directory)' (\(errorText())); polling every \(pollMilliseconds) ms")
            }
        }
        inotifyFD = watchFD

        log = context.stateDirectory.map { IndexLog(directory: $0) }
        let logged = try log?.read() ?? []
        // Partitions may be added between runs (new files go to them too); taking one away would change what the
        // committed offsets of the files in it mean.
        let loggedPartitions = logged.reduce(1) { count, entry in
            if case .partitions(let logged) = entry { return logged }
            return count
        }
        if loggedPartitions > configuration.partitions {
            throw PluginError(
                "configuration key 'partitions': \(configuration.partitions), but this source's index ('\(log?.path ?? "")') "
                    + "spreads its files over \(loggedPartitions) partitions, and their committed offsets would change "
                    + "meaning; set partitions: \(loggedPartitions) or more, or start over with `sluice checkpoints reset`"
            )
        }
        partitionCount = configuration.partitions
        state = Mutex(FileWatchSource.State(partitions: partitionCount))
        if partitionCount > loggedPartitions {
            try log?.append([.partitions(partitionCount)])
        }
        let present = try listDirectory()
        if !logged.isEmpty {
            // A restart with checkpoints: the same offsets as before, then the files that arrived meanwhile.
            try restore(logged)
            let known = state.withLock { $0.known }
            try add(present.filter { !known.contains($0) })
        } else if configuration.start == "earliest" {
            // The files present now: indexed before init returns (earliest) or remembered as skipped (latest).
            try add(present)
        } else {
            try log?.append(present.map { .skipped(name: $0) })
            state.withLock { $0.known.formUnion(present) }
        }
    }

    /// The index log's description of this source's offsets, as the state.
    private func restore(_ entries: [IndexLog.Entry]) throws {
        let files = entries.compactMap { entry -> (name: String, partition: Int, first: UInt64, lines: UInt64, size: Int)? in
            guard case .file(let name, let partition, let first, let lines, let size) = entry else { return nil }
            return (name, partition, first, lines, size)
        }
        if let stray = files.first(where: { $0.partition >= partitionCount }) {
            throw PluginError(
                "the file-watch index '\(log?.path ?? "")' puts '\(stray.name)' in partition \(stray.partition), but the "
                    + "source has \(partitionCount); set partitions: \(stray.partition + 1) or more"
            )
        }
        let indexed = IndexedFile.indexAll(files.map { directory + "/" + $0.name })
        state.withLock { state in
            for entry in entries { if let name = entry.name { state.known.insert(name) } }
            for (file, result) in zip(files, indexed) {
                if case .success(var found) = result, found.lineCount == file.lines, found.size == file.size {
                    found.firstOffset = file.first
                    found.partition = file.partition
                    state.partitions[file.partition].files.append(found)
                } else {
                    state.partitions[file.partition].missing.append((file.name, file.first..<(file.first + file.lines)))
                    let lines = "lines \(file.first)..<\(file.first + file.lines)"
                    let place = partitionCount > 1 ? "partition \(file.partition), \(lines)" : lines
                    context.log(.warning, "'\(file.name)' (\(place)) is gone or changed since it was indexed")
                }
                state.partitions[file.partition].total = file.first + file.lines
            }
        }
    }

    /// Indexes `names` in order, records them in the index log (durably, when there is one), then offers their
    /// lines. A file that cannot be indexed is skipped with an error; a log that cannot be written leaves the files
    /// unoffered, to be tried again.
    private func add(_ names: [String]) throws {
        var indexed: [(name: String, file: IndexedFile)] = []
        for (name, result) in zip(names, IndexedFile.indexAll(names.map { directory + "/" + $0 })) {
            switch result {
            case .success(let file): indexed.append((name, file))
            case .failure(let error): state.withLock { $0.lastError = "skipping '\(name)': \(error)" }
            }
        }
        // Place the files on a copy of the partitions' ends: nothing is offered before the log holds it. Only this
        // thread (or init, before it starts) extends the index, so the ends cannot move meanwhile.
        let before = state.withLock { state in state.partitions.map(\.total) }
        var ends = before
        for i in indexed.indices {
            let p = FileWatchSource.State.emptiest(ends)
            indexed[i].file.partition = p
            indexed[i].file.firstOffset = ends[p]
            ends[p] = indexed[i].file.endOffset
        }
        try log?.append(indexed.map {
            .file(name: $0.name, partition: $0.file.partition, firstOffset: $0.file.firstOffset, lines: $0.file.lineCount, size: $0.file.size)
        })
        state.withLock { state in
            precondition(state.partitions.map(\.total) == before, "the file index grew while it was being extended")
            for (name, file) in indexed {
                state.partitions[file.partition].files.append(file)
                state.partitions[file.partition].total = file.endOffset
                state.known.insert(name)
                state.candidates[name] = nil
            }
            for name in names { state.known.insert(name) }
        }
    }

    deinit {
        if inotifyFD >= 0 { close(inotifyFD) }
    }

    /// The matching file names in the directory, sorted.
    private func listDirectory() throws -> [String] {
        guard let dir = opendir(directory) else {
            throw PluginError("cannot list '\(directory)': \(errorText())")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard isCandidate(name) else { continue }
            var info = stat()
            guard stat(directory + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            names.append(name)
        }
        return names.sorted()
    }

    /// A name holding a newline is never read: the index log's records are lines.
    private func isCandidate(_ name: String) -> Bool {
        !name.hasPrefix(".") && !name.contains("\n") && !name.hasSuffix(".tmp") && !name.hasSuffix("._COPYING_") && fnmatch(glob, name, 0) == 0
    }

    /// The watcher thread: waits for inotify events, the stop pipe, or the rescan timeout.
    func watch(_ stop: StopSignal) {
        var completed: Set<String> = []
        while !stop.isStopping {
            var fds = [pollfd(fd: stop.fileDescriptor, events: Int16(POLLIN), revents: 0)]
            if inotifyFD >= 0 { fds.append(pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), pollMilliseconds)
            if stop.isStopping { return }
            if ready > 0 && inotifyFD >= 0 && fds[1].revents & Int16(POLLIN) != 0 {
                completed.formUnion(drainInotify())
            }
            scan(completed: completed)
            completed.removeAll()
        }
    }

    /// The names inotify reported as completely written or moved in.
    private func drainInotify() -> Set<String> {
        var names: Set<String> = []
        let size = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let n = Glibc.read(inotifyFD, buffer, size)
            if n <= 0 { break }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let nameStart = buffer + offset + MemoryLayout<inotify_event>.size
                let length = Int(event.len)
                if length > 0 {
                    let raw = UnsafeRawBufferPointer(start: nameStart, count: length)
                    names.insert(String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self))
                }
                offset += MemoryLayout<inotify_event>.size + length
            }
        }
        return names
    }

    /// Indexes new files: those inotify said are complete, and those whose size and mtime held still for a scan.
    private func scan(completed: Set<String>) {
        let names: [String]
        do {
            names = try listDirectory()
        } catch {
            state.withLock { $0.lastError = "\(error)" }
            return
        }
        let fresh = state.withLock { state in names.filter { !state.known.contains($0) } }
        guard !fresh.isEmpty else { return }
        var ready: [String] = []
        var observed: [String: (Int, Int)] = [:]
        for name in fresh {
            var info = stat()
            guard stat(directory + "/" + name, &info) == 0 else { continue }
            let signature = (Int(info.st_size), Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec))
            let previous = state.withLock { $0.candidates[name] }
            if completed.contains(name) || (previous.map { $0 == signature } ?? false) {
                ready.append(name)
            } else {
                observed[name] = signature
            }
        }
        state.withLock { state in
            for (name, signature) in observed { state.candidates[name] = signature }
        }
        do {
            try add(ready.sorted())
        } catch {
            state.withLock { $0.lastError = "\(error); the new files are offered once it can be written" }
        }
    }
}
