import CFFI
import Foundation
import SluiceCore
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// A problem in a function manifest or its library, located in the manifest file.
public struct FunctionLibraryError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int
    public var keyPath: String
    public var message: String
    public var description: String { "\(file):\(line): error: \(keyPath.isEmpty ? "" : keyPath + ": ")\(message)" }
}
