import Foundation
import SluiceCore
import SluiceFunctions
import SluiceHost
import SluiceLoader
import SluiceSDK
import Testing

/// Function libraries: C functions declared in a manifest, called through libffi as map, filter and reduce.
@Suite(.serialized)
struct FunctionLibraryTests {
    /// A directory with libtemps.so (compiled from the fixture) and its manifest.
    static func library() throws -> URL {
        let directory = try TestPaths.temporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", "-fvisibility=hidden",
            "-o", directory.appendingPathComponent("libtemps.so").path, TestPaths.fixtures.appendingPathComponent("temps.c").path,
        ]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "gcc failed on temps.c")
        try FileManager.default.copyItem(
            at: TestPaths.fixtures.appendingPathComponent("temps.functions.yaml"),
            to: directory.appendingPathComponent("temps.functions.yaml")
        )
        return directory
    }

    static func numbers(_ values: [String], keyed: Bool = true) -> OwnedBatch {
        var builder = BatchBuilder(keyed: keyed, timestamps: true)
        for (i, value) in values.enumerated() {
            if keyed { builder.append(key: "k\(i)", value: value) } else { builder.append(value) }
            builder.setLastTimestamp(Int64(1000 + i))
        }
        return OwnedBatch(builder)
    }

    static func display(_ batch: OwnedBatch) -> [String] {
        let view = batch.view
        return (0..<view.count).map { "\(view.displayString(at: $0))@\(view.timestamp(at: $0) ?? -1)" }
    }

    @Test func scalarAndBatchFunctionsGiveTheSameResults() throws {
        let directory = try Self.library()
        defer { try? FileManager.default.removeItem(at: directory) }
        let library = try FunctionLibrary(manifest: directory.appendingPathComponent("temps.functions.yaml").path)
        #expect(library.name == "temps")
        let input = Self.numbers(["0", "100", "-40", "37.5", "warm"])

        let scalar = FunctionTransform(try #require(library.functions["to_fahrenheit"]))
        let batch = FunctionTransform(try #require(library.functions["to_fahrenheit_batch"]))
        let expected = ["(k0,32.0)@1000", "(k1,212.0)@1001", "(k2,-40.0)@1002", "(k3,99.5)@1003"]
        #expect(Self.display(try scalar.transform(input)) == expected)
        #expect(Self.display(try batch.transform(input)) == expected)
        let discarded = scalar.takeDiscarded()
        #expect(discarded.count == 1)
        #expect(discarded.reason?.contains("'warm' is not a number") == true)
        #expect(scalar.takeDiscarded().count == 0, "taking the count resets it")

        for name in ["is_hot", "is_hot_batch"] {
            let hot = FunctionTransform(try #require(library.functions[name]))
            #expect(Self.display(try hot.transform(input)) == ["(k1,100)@1001", "(k3,37.5)@1003"], "\(name)")
        }
        let even = FunctionTransform(try #require(library.functions["is_even"]))
        #expect(Self.display(try even.transform(Self.numbers(["1", "2", "3", "4"], keyed: false))) == ["2@1001", "4@1003"])
        let square = FunctionTransform(try #require(library.functions["square"]))
        let squared = try square.transform(Self.numbers(["3", "-4", "2.5"], keyed: false))
        #expect(squared.view.valueType == .int64)
        #expect(Self.display(squared) == ["9@1000", "16@1001"], "2.5 is not an int64 and is dropped")
    }

    @Test func reduceFunctionsCombinePairs() throws {
        let directory = try Self.library()
        defer { try? FileManager.default.removeItem(at: directory) }
        let library = try FunctionLibrary(manifest: directory.appendingPathComponent("temps.functions.yaml").path)
        let a: [UInt64] = [1, 2, 3].map { UInt64(bitPattern: $0) }
        let b: [UInt64] = [10, -20, 30].map { UInt64(bitPattern: $0) }
        for name in ["add", "add_batch"] {
            let function = try #require(library.functions[name])
            var out = [UInt64](repeating: 0, count: 3)
            function.reduce(a, b, &out, 3)
            #expect(out.map { Int64(bitPattern: $0) } == [11, -18, 33], "\(name)")
        }
    }

    struct ManifestCase: CustomTestStringConvertible, Sendable {
        var name: String
        var line: Int
        var replacement: String
        var keyPath: String
        var message: String
        var testDescription: String { name }
    }

    @Test(arguments: [
        ManifestCase(name: "unsupported signature", line: 4, replacement: "  - {name: to_fahrenheit, symbol: c_to_f, kind: map, signature: \"float(double)\"}",
                     keyPath: "functions[0].signature", message: "'float(double)' is not a supported signature"),
        ManifestCase(name: "signature of another kind", line: 9, replacement: "  - {name: square, kind: filter, signature: \"int64(int64)\"}",
                     keyPath: "functions[5].signature", message: "is a map signature, but kind is filter"),
        ManifestCase(name: "missing symbol", line: 10, replacement: "  - {name: add, symbol: plus, kind: reduce, signature: \"int64(int64, int64)\"}",
                     keyPath: "functions[6].symbol", message: "no symbol 'plus'"),
        ManifestCase(name: "unknown key", line: 6, replacement: "  - {name: is_hot, kind: filter, signature: \"bool(double)\", sig: x}",
                     keyPath: "functions[2].sig", message: "unknown key 'sig'"),
        ManifestCase(name: "unknown kind", line: 6, replacement: "  - {name: is_hot, kind: predicate, signature: \"bool(double)\"}",
                     keyPath: "functions[2].kind", message: "unknown kind 'predicate'"),
        ManifestCase(name: "missing library", line: 2, replacement: "library: libnope.so",
                     keyPath: "library", message: "cannot load"),
    ])
    func manifestErrorsNameTheFileLineAndKey(_ c: ManifestCase) throws {
        let directory = try Self.library()
        defer { try? FileManager.default.removeItem(at: directory) }
        let manifest = directory.appendingPathComponent("temps.functions.yaml")
        var lines = try String(contentsOf: manifest, encoding: .utf8).components(separatedBy: "\n")
        lines[c.line - 1] = c.replacement
        try lines.joined(separator: "\n").write(to: manifest, atomically: true, encoding: .utf8)
        let error = #expect(throws: FunctionLibraryError.self) { _ = try FunctionLibrary(manifest: manifest.path) }
        #expect(error?.line == c.line)
        #expect(error?.keyPath == c.keyPath)
        #expect(error?.message.contains(c.message) == true, "\(error?.description ?? "")")
        #expect(error?.description.hasPrefix("\(manifest.path):\(c.line): error: \(c.keyPath): ") == true)
    }

    static func pipeline(_ stages: String) -> String {
        """
        name: temps
        batch_interval: 1s
        sources:
          readings: {plugin: file-watch, config: {directory: /tmp, start: latest}}
        stages:
        \(stages)
        sinks:
          out: {from: result, plugin: console}
        """
    }

    @Test(arguments: [
        ("  result: {from: readings, op: map, function: tmps.to_fahrenheit}", "no function library named 'tmps' (did you mean 'temps'?)"),
        ("  result: {from: readings, op: map, function: temps.to_farenheit}", "has no function 'to_farenheit' (did you mean 'to_fahrenheit'?)"),
        ("  result: {from: readings, op: map, function: temps.is_hot}", "'temps.is_hot' is a filter function (bool(double)); map needs a map function"),
        ("  result: {from: readings, op: filter}", "missing required key 'function'"),
        ("  result: {from: readings, op: filter, function: is_hot}", "'is_hot' is not LIBRARY.FUNCTION"),
    ])
    func pipelineReferencesToFunctionsAreChecked(stage: String, message: String) throws {
        let directory = try Self.library()
        defer { try? FileManager.default.removeItem(at: directory) }
        let catalog = PluginCatalog.scan(directories: [directory.path, TestPaths.binDirectory])
        #expect(catalog.functionManifests["temps"] != nil)
        #expect(catalog.refusals.isEmpty, "libtemps.so is a function library, not a refused plugin: \(catalog.refusals)")
        let error = #expect(throws: PipelineErrors.self) {
            let spec = try PipelineParser.parse(text: Self.pipeline(stage), file: "temps.yaml")
            _ = try PipelineBuilder.resolve(spec, catalog: catalog)
        }
        let first = try #require(error?.errors.first)
        #expect(first.line == 6)
        #expect(first.keyPath.hasPrefix("stages.result"))
        #expect(first.message.contains(message), "\(first)")
    }
}
