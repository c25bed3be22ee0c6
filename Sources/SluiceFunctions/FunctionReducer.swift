import CFFI
import Foundation
import SluiceCore
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// A library's reduce function as a keyed operation's reducer.
public final class FunctionReducer: CustomReducer {
    public let function: NativeFunction
    public var name: String { function.name }
    public let valueType: ReducerValueType
    public var hasInverse: Bool { function.inverse != nil }

    public init(_ function: NativeFunction) {
        precondition(function.shape.kind == .reduce)
        self.function = function
        valueType = function.shape.argument == .int64 ? .int64 : .double
    }

    public func combine(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) {
        function.reduce(a, b, out, n)
    }

    public func invert(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) throws {
        guard let inverse = function.inverse else { throw ReducerError("\(name) has no inverse") }
        inverse.reduce(a, b, out, n)
    }
}
