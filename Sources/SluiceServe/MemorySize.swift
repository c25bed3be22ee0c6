import Foundation

/// Spark's memory strings (`driverMemory`, `executorMemory`): a number with a unit `k`, `m`, `g` or `t` (binary
/// multiples, an optional `b` after it, any case), or without one in MiB, as Spark reads them.
enum MemorySize {
    static func bytes(_ text: String) -> Int64? {
        var digits = text.trimmingCharacters(in: .whitespaces).lowercased()
        if digits.hasSuffix("b"), digits.count > 1, let last = digits.dropLast().last, last.isLetter {
            digits.removeLast()
        }
        let shift: Int64
        switch digits.last {
        case "k": shift = 10
        case "m": shift = 20
        case "g": shift = 30
        case "t": shift = 40
        default: shift = -1
        }
        if shift >= 0 { digits.removeLast() }
        guard let value = Int64(digits), value > 0 else { return nil }
        let unit = shift >= 0 ? shift : 20
        guard value <= Int64.max >> unit else { return nil }
        return value << unit
    }
}
