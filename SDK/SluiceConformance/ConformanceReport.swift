/// The result of checking a built plugin file.
public struct ConformanceReport: CustomStringConvertible, Sendable {
    public struct Check: Sendable {
        public var name: String
        public var passed: Bool
        public var detail: String
    }

    public var path: String
    public var checks: [Check] = []
    /// True when every check passed.
    public var passed: Bool { checks.allSatisfy(\.passed) }
    /// The checks that failed.
    public var failures: [Check] { checks.filter { !$0.passed } }

    mutating func record(_ name: String, _ passed: Bool, _ detail: String = "") {
        checks.append(Check(name: name, passed: passed, detail: detail))
    }

    public var description: String {
        var lines = ["conformance of \(path): \(passed ? "passed" : "FAILED")"]
        for check in checks {
            lines.append("  [\(check.passed ? "ok" : "FAIL")] \(check.name)" + (check.detail.isEmpty ? "" : ": \(check.detail)"))
        }
        return lines.joined(separator: "\n")
    }
}
