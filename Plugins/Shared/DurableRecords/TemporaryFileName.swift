#if canImport(Glibc)
import Glibc
#endif

/// The names of `AtomicFile`'s temporary files: `.<final name>.tmp-<pid>-<random hex>`. Hidden (a leading dot, so
/// directory watchers and globs skip them), unpredictable (so nobody can plant a symlink there ahead of time), and
/// naming the process that wrote them (so the leftovers of a process that died can be told from a live write).
package enum TemporaryFileName {
    /// The marker between the final name and the owner.
    package static let marker = ".tmp-"

    /// A fresh temporary name for `finalName`, owned by this process.
    package static func make(for finalName: String) -> String {
        ".\(finalName)\(marker)\(getpid())-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    /// The process that wrote `name`, when it is a temporary name for a final name starting with `prefix`
    /// (`.PREFIX….tmp-PID-RANDOM`, or `….tmp-PID` as earlier versions named them); nil for any other name.
    package static func owner(of name: String, prefix: String) -> pid_t? {
        let start = "." + prefix
        guard name.hasPrefix(start) else { return nil }
        // The last marker after the prefix; what follows up to a '-' (or the end) is the owner's process id.
        let bytes = Array(name.utf8.dropFirst(start.utf8.count))
        let marker = Array(Self.marker.utf8)
        guard bytes.count > marker.count,
            let at = (0...(bytes.count - marker.count)).last(where: { bytes[$0..<($0 + marker.count)].elementsEqual(marker) })
        else { return nil }
        let digits = bytes[(at + marker.count)...].prefix { $0 != UInt8(ascii: "-") }
        return pid_t(String(decoding: digits, as: UTF8.self))
    }
}
