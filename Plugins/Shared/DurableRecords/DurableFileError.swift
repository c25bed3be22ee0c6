#if canImport(Glibc)
import Glibc
#endif

/// A file operation of `DurableDirectory` or `AtomicFile` that failed: what was done, to which path, and the
/// system's reason (`strerror`), ready for an error message.
package struct DurableFileError: Error, CustomStringConvertible, Sendable {
    /// For example "cannot fsync '/ck/sources/feed/committed-offset': Input/output error".
    package var description: String
    /// The `errno` of the failed call.
    package var code: Int32

    /// Captures `errno` now, so call it right after the failed call.
    package init(_ action: String, _ path: String) {
        code = errno
        description = "cannot \(action) '\(path)': \(String(cString: strerror(code)))"
    }
}
