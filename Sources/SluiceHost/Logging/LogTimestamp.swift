import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// ISO-8601 in UTC with milliseconds (`2026-12-02T15:39:46.123Z`): unambiguous across hosts and time zones, and
/// parsed by every log shipper. Formatted by hand: `ISO8601DateFormatter` is slow and not `Sendable`.
enum LogTimestamp {
    static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds.quotientAndRemainder(dividingBy: 1000).quotient)
        var fraction = Int(milliseconds % 1000)
        if fraction < 0 {
            fraction += 1000
            seconds -= 1
        }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), fraction
        )
    }
}
