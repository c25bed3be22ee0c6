import SluiceLoader
import SluiceSDK

/// Checks that a built `.so` plays by the ABI: it loads the way the host loads it, describes itself, accepts a
/// configuration, refuses an unknown option by name, and behaves correctly for its kind.
public enum PluginConformance {
    /// Loads `path` with the host's loader and exercises the plugin. `config` must be a valid configuration.
    /// - Parameter allowInsecure: load a file others could have written (the host's `--allow-insecure-plugins`).
    public static func check(path: String, config: String = "{}", allowInsecure: Bool = false) -> ConformanceReport {
        var report = ConformanceReport(path: path)
        let plugin: LoadedPlugin
        do {
            plugin = try PluginLoader.load(path: path, allowInsecure: allowInsecure)
            report.record("loads", true, "\(plugin.name) \(plugin.version), \(plugin.kind.rawValue), ABI \(plugin.abiDescription)"
                + (plugin.insecurityWarning.map { "; warning: \($0)" } ?? ""))
        } catch {
            report.record("loads", false, error.cause)
            return report
        }
        report.record("has a version", !plugin.version.isEmpty && plugin.version != "?")
        report.record("has a description", !plugin.summary.isEmpty)
        let log: PluginLogHandler = { _, _, _ in }

        if plugin.schema.closed {
            do {
                _ = try PluginInstance(plugin: plugin, name: "conformance", configJSON: #"{"no_such_option_x":1}"#, log: log)
                report.record("refuses an unknown option", false, "an unknown option was accepted")
            } catch {
                report.record("refuses an unknown option", "\(error)".contains("no_such_option_x"), "\(error)")
            }
        }

        let instance: PluginInstance
        do {
            instance = try PluginInstance(plugin: plugin, name: "conformance", configJSON: config, log: log)
            report.record("accepts the configuration", true, config)
        } catch {
            report.record("accepts the configuration", false, "\(error)")
            return report
        }

        switch plugin.kind {
        case .transform: checkTransform(instance, &report)
        case .source: checkSource(instance, &report)
        case .sink: checkSink(instance, &report)
        case .reducer: checkReducer(instance, &report)
        case .stateUpdater: checkStateUpdater(instance, &report)
        }
        return report
    }

    /// What is wrong with a batch a plugin returned, or nil when it is well formed: the host's own rules
    /// (``BatchRules``), so the checker and the host never disagree.
    public static func problems(in batch: OwnedBatch, expectedCount: Int? = nil) -> String? {
        BatchRules.violation(in: batch.raw, expectedCount: expectedCount.map(UInt64.init)).map { "a batch whose \($0)" }
    }

    /// A reducer must be associative and commutative: combining in two orders and groupings gives the same values.
    private static func checkReducer(_ instance: PluginInstance, _ report: inout ConformanceReport) {
        let n = 64
        let isDouble = instance.reduceValueType == SLUICE_REDUCE_DOUBLE
        // Small integers, exact in both types.
        let values = (0..<(3 * n)).map { i -> UInt64 in
            let v = Int64(i % 17) - 8
            return isDouble ? Double(v).bitPattern : UInt64(bitPattern: v)
        }
        let a = Array(values[0..<n])
        let b = Array(values[n..<(2 * n)])
        let c = Array(values[(2 * n)...])
        func combine(_ x: [UInt64], _ y: [UInt64]) throws -> [UInt64] {
            var out = [UInt64](repeating: 0, count: n)
            try x.withUnsafeBytes { x in
                try y.withUnsafeBytes { y in
                    try out.withUnsafeMutableBytes { try instance.reduceCombine(x.baseAddress!, y.baseAddress!, $0.baseAddress!, n) }
                }
            }
            return out
        }
        do {
            let ab = try combine(a, b)
            report.record("combines a batch", true, "\(n) pairs in one call")
            report.record("is commutative", try combine(b, a) == ab)
            report.record("is associative", try combine(ab, c) == (try combine(a, try combine(b, c))))
            if instance.hasReduceInvert {
                var back = [UInt64](repeating: 0, count: n)
                try ab.withUnsafeBytes { x in
                    try b.withUnsafeBytes { y in
                        try back.withUnsafeMutableBytes { try instance.reduceInvert(x.baseAddress!, y.baseAddress!, $0.baseAddress!, n) }
                    }
                }
                report.record("inverts what it combined", back == a)
            }
        } catch {
            report.record("combines a batch", false, "\(error)")
        }
    }

    /// A state updater is called the way `updateStateByKey` calls it: a new key with records, then the state it made
    /// with more records, then that state with no records (an idle key). Each answer must be well formed (a known
    /// action; new state with a sane pointer and length — `PluginInstance.updateState` applies the host's rules)
    /// and the same when asked again, since a replayed batch must give the same state.
    private static func checkStateUpdater(_ instance: PluginInstance, _ report: inout ConformanceReport) {
        // Integer values, as `split`'s pairs carry; a plugin that refuses them (it wants text) gets the same numbers
        // as text.
        var asText = false
        func values(_ numbers: [Int64]) -> OwnedBatch {
            .of(numbers.map { asText ? Record(String($0)) : Record(int: $0) })
        }
        func update(_ numbers: [Int64], _ state: [UInt8]?) throws -> PluginStateChange {
            try Array("conformance-key".utf8).withUnsafeBytes { key in
                try instance.updateState(key: key, values: values(numbers), state: state)
            }
        }
        func describe(_ change: PluginStateChange) -> String {
            switch change {
            case .keep: "keep"
            case .remove: "remove"
            case .set(let bytes): "set \(bytes.count) bytes"
            }
        }
        let first: PluginStateChange
        do {
            do {
                first = try update([1, 2, 3], nil)
            } catch is PluginCallError {
                asText = true
                first = try update([1, 2, 3], nil)
            }
            report.record("updates a new key", true, describe(first) + (asText ? " (values as text)" : ""))
            report.record("answers the same for the same key, values and state", try update([1, 2, 3], nil) == first)
        } catch {
            report.record("updates a new key", false, "\(error)")
            return
        }
        guard case .set(let state) = first else {
            report.record("keeps state for a new key", true, "it did not (\(describe(first))); the calls with state are skipped")
            return
        }
        do {
            let second = try update([4, 5], state)
            report.record("updates an existing state", true, describe(second))
            // The state the key has now: what the second call set, or still the first's.
            var current = state
            if case .set(let bytes) = second { current = bytes }
            let idle = try update([], current)
            report.record("updates a key without values", true, describe(idle))
            report.record("answers the same for a key without values", try update([], current) == idle)
        } catch {
            report.record("updates an existing state", false, "\(error)")
        }
    }

    private static func checkTransform(_ instance: PluginInstance, _ report: inout ConformanceReport) {
        for (name, records) in [("an empty batch", [Record]()), ("a small batch", [Record("alpha beta"), Record(""), Record("γ δ")])] {
            do {
                let output = try instance.transform(.of(records))
                // The host has already checked the batch (PluginInstance.transform throws on a malformed one).
                let problem = problems(in: output)
                report.record("transforms \(name)", problem == nil, problem ?? "\(output.count) records out")
            } catch {
                report.record("transforms \(name)", false, "\(error)")
            }
        }
    }

    private static func checkSource(_ instance: PluginInstance, _ report: inout ConformanceReport) {
        do {
            let partitions = try instance.partitionCount()
            report.record("has partitions", partitions >= 1, "\(partitions)")
            for partition in 0..<min(partitions, 4) {
                let available = try instance.available(partition: partition)
                let range = available.lowerBound..<min(available.upperBound, available.lowerBound + 1000)
                let first = try instance.read(partition: partition, offsets: range)
                let second = try instance.read(partition: partition, offsets: range)
                let problem = problems(in: first, expectedCount: range.count)
                report.record("reads partition \(partition) \(range)", problem == nil, problem ?? "")
                report.record("re-reading partition \(partition) gives the same records", first.records == second.records)
            }
        } catch {
            report.record("source calls succeed", false, "\(error)")
        }
    }

    private static func checkSink(_ instance: PluginInstance, _ report: inout ConformanceReport) {
        do {
            let first = BatchInfo(id: 0, timeMilliseconds: 1_000)
            try instance.begin(first)
            try instance.write(.of([]))
            try instance.commit(first)
            report.record("writes and commits an empty batch", true)
            let second = BatchInfo(id: 1, timeMilliseconds: 2_000)
            try instance.begin(second)
            try instance.write(.of([Record("one")]))
            try instance.begin(second)  // a replay of an uncommitted batch
            try instance.write(.of([Record("one")]))
            try instance.commit(second)
            report.record("accepts a replayed begin", true)
        } catch {
            report.record("sink calls succeed", false, "\(error)")
        }
    }
}
