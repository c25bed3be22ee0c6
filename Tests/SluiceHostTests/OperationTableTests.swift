import Foundation
import SluiceHost
import Testing

/// The operation table is what the parser checks a stage against: every key it declares is accepted, every other one
/// refused, required ones demanded, and every operation documented.
struct OperationTableTests {
    /// A value each key accepts with every operation that takes it (windows and timeouts in whole 1 s batches).
    static func value(of key: OperationKey, in operation: BuiltinOperation) -> String {
        switch key {
        case .partitions: "2"
        case .function: operation.function == .reduce ? "sum" : "lib.f"
        case .window: "2s"
        case .slide: "1s"
        case .inverse, .dropZero: "true"
        case .timeout: "2s"
        }
    }

    /// The problems the parser finds in a stage `s` of `operation` with `keys` (plus `from`/`op`).
    static func problems(_ operation: BuiltinOperation, keys: [OperationKey]) -> [PipelineError] {
        let inputs = switch operation.inputs {
        case .one, .oneOrMore: "words"
        case .two, .twoOrMore: "[words, more]"
        }
        let extra = keys.map { ", \($0.rawValue): \(value(of: $0, in: operation))" }.joined()
        let yaml = """
            name: table
            batch_interval: 1s
            sources:
              lines: {plugin: file-watch, config: {directory: /tmp}}
            stages:
              words: {from: lines, plugin: split}
              more: {from: lines, plugin: split}
              s: {from: \(inputs), op: \(operation.name)\(extra)}
            sinks:
              out: {from: s, plugin: console}
            """
        do {
            _ = try PipelineParser.parse(text: yaml, file: "table.yaml")
            return []
        } catch {
            return error.errors
        }
    }

    @Test(arguments: BuiltinOperation.all.map(\.name))
    func theParserTakesExactlyTheDeclaredKeys(_ name: String) throws {
        let operation = try #require(BuiltinOperation.named(name))
        let required = OperationKey.allCases.filter { operation.required.contains($0) }
        #expect(Self.problems(operation, keys: required).isEmpty, "\(name) with its required keys")
        for key in OperationKey.allCases where !required.contains(key) {
            let problems = Self.problems(operation, keys: required + [key])
            if operation.keys.contains(key) {
                #expect(problems.isEmpty, "\(name) takes '\(key.rawValue)': \(problems)")
            } else {
                #expect(
                    problems.map(\.keyPath) == ["stages.s.\(key.rawValue)"]
                        && problems[0].message.contains("does not apply to \(name)"),
                    "\(name) does not take '\(key.rawValue)': \(problems)"
                )
            }
        }
        for key in required {
            let problems = Self.problems(operation, keys: required.filter { $0 != key })
            #expect(problems.contains { $0.message.contains("missing required key '\(key.rawValue)'") }, "\(name) without '\(key.rawValue)'")
        }
    }

    @Test func namesAreUniqueAndEveryOperationHasItsSectionInTheOperatorReference() throws {
        let names = BuiltinOperation.all.map(\.name)
        #expect(Set(names).count == names.count)
        let reference = try String(contentsOf: Self.repoRoot.appendingPathComponent("docs/operators.md"), encoding: .utf8)
        let headings = reference.split(separator: "\n").filter { $0.hasPrefix("#") }.joined(separator: "\n")
        for name in names {
            #expect(headings.contains("`\(name)`"), "docs/operators.md has no heading naming `\(name)`")
        }
    }

    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
