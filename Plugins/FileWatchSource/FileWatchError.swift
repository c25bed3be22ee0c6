import SluiceSDK

#if canImport(Glibc)
import Glibc
#endif

/// A file the source cannot index or read, with a message naming it.
struct FileWatchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The text of the current `errno`, for messages.
func errorText() -> String { String(cString: strerror(errno)) }
