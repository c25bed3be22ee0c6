import Foundation
import Testing

@testable import SluiceServe

/// How Livy's request fields map onto a pipeline run, without a server: each field's translation and each refusal.
struct BatchRequestTests {
    static let pipeline = """
        name: inline
        batch_interval: 100ms
        sources:
          lines: {plugin: file-watch, config: {directory: /tmp, glob: "*.txt"}}
        sinks:
          out: {from: lines, plugin: console}
        """

    static func parse(_ object: [String: Any], allowed: [URL] = []) throws(ServeError) -> BatchRequest {
        let body = try! JSONSerialization.data(withJSONObject: object)
        return try BatchRequest.parse(Array(body), allowedDirectories: allowed, environment: [:])
    }

    static func refusal(_ object: [String: Any], allowed: [URL] = []) -> ServeError? {
        do {
            _ = try parse(object, allowed: allowed)
            return nil
        } catch {
            return error
        }
    }

    @Test func executorsCoresAndMemoryBecomeParallelismAndALimit() throws {
        let request = try Self.parse([
            "pipeline": Self.pipeline, "numExecutors": 2, "executorCores": 3, "driverMemory": "1g", "executorMemory": "512m",
            "className": "ignored", "queue": "default", "driverCores": 4,
        ])
        #expect(request.parallelism == 6)
        #expect(request.memoryLimitBytes == Int64(2) << 30, "1 GiB and two executors of 512 MiB")
        #expect(request.name == "inline", "the pipeline's own name")
        #expect(request.pipeline == .inline(Self.pipeline))
    }

    @Test func confGivesTheRestartPolicyAndPipelineValues() throws {
        let request = try Self.parse([
            "pipeline": Self.pipeline, "name": "given", "conf": ["restart": "on-failure", "batch_interval": "1s"],
            "args": ["--batches", "3", "--until-idle", "--idle-batches=4"],
        ])
        #expect(request.restartOnFailure)
        #expect(request.settings == ["batch_interval=1s"])
        #expect(request.arguments == ["--batches", "3", "--until-idle", "--idle-batches=4"])
        #expect(request.name == "given")
        #expect(Self.refusal(["pipeline": Self.pipeline, "conf": ["restart": "always"]])?.message.contains("on-failure or never") == true)
        #expect(Self.refusal(["pipeline": Self.pipeline, "conf": ["batch_interval": "soon"]])?.message.hasPrefix("invalid pipeline:") == true)
    }

    @Test func fieldsSluiceCannotHonourAreRefusedByName() {
        #expect(Self.refusal(["pipeline": Self.pipeline, "jars": ["a.jar"]])?.message.hasPrefix("'jars' is not supported") == true)
        #expect(Self.refusal(["pipeline": Self.pipeline, "jars": []]) == nil, "an empty list asks for nothing")
        #expect(Self.refusal(["pipeline": Self.pipeline, "proxyUser": "bob"])?.message.hasPrefix("'proxyUser'") == true)
        #expect(Self.refusal(["pipeline": Self.pipeline, "args": ["--batches"]])?.message == "'args': --batches needs a value")
        #expect(Self.refusal(["pipeline": Self.pipeline, "args": ["--checkpoint-dir", "/x"]])?.message.contains("not allowed") == true)
        #expect(Self.refusal(["pipeline": Self.pipeline, "numExecutors": 0])?.message == "'numExecutors' must be a positive integer")
        #expect(Self.refusal(["pipeline": Self.pipeline, "args": "--batches 3"])?.message == "'args' must be a list of strings")
        #expect(Self.refusal(["pipeline": Self.pipeline, "driverMemory": "lots"])?.message.contains("512m or 2g") == true)
        #expect(Self.refusal([:])?.message.hasPrefix("missing field") == true)
        #expect(Self.refusal(["pipeline": Self.pipeline, "file": "/x.yaml"])?.message == "give 'file' or 'pipeline', not both")
        #expect(Self.refusal(["file": "relative.yaml"], allowed: [URL(fileURLWithPath: "/")])?.message.contains("absolute") == true)
    }

    @Test func aFileMustBeUnderAnAllowedDirectoryOnceLinksAreFollowed() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("serve-allowed-\(UUID().uuidString)")
        let allowed = root.appendingPathComponent("allowed")
        try FileManager.default.createDirectory(at: allowed, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let inside = allowed.appendingPathComponent("p.yaml")
        try Self.pipeline.write(to: inside, atomically: true, encoding: .utf8)
        let outside = root.appendingPathComponent("q.yaml")
        try Self.pipeline.write(to: outside, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(at: allowed.appendingPathComponent("link.yaml"), withDestinationURL: outside)

        let request = try Self.parse(["file": "file://" + inside.path], allowed: [allowed])
        #expect(request.pipeline == .file(inside.resolvingSymlinksInPath().path))
        #expect(Self.refusal(["file": outside.path], allowed: [allowed])?.statusCode == 403)
        #expect(Self.refusal(["file": allowed.appendingPathComponent("link.yaml").path], allowed: [allowed])?.statusCode == 403)
        #expect(Self.refusal(["file": allowed.path + "/../q.yaml"], allowed: [allowed])?.statusCode == 403)
        // A sibling whose name starts with the allowed one's is not under it.
        #expect(Self.refusal(["file": inside.path], allowed: [root.appendingPathComponent("allow")])?.statusCode == 403)
    }

    @Test func memorySizesReadAsSparkReadsThem() {
        #expect(MemorySize.bytes("512m") == 512 << 20)
        #expect(MemorySize.bytes("2G") == 2 << 30)
        #expect(MemorySize.bytes("4gb") == 4 << 30)
        #expect(MemorySize.bytes("64k") == 64 << 10)
        #expect(MemorySize.bytes("1024") == 1024 << 20, "no unit is MiB")
        #expect(MemorySize.bytes("1.5g") == nil)
        #expect(MemorySize.bytes("0") == nil)
        #expect(MemorySize.bytes("g") == nil)
        #expect(MemorySize.bytes("99999999999t") == nil, "too large for 64 bits")
    }

    @Test func theRestartBackOffDoublesUpToItsMaximum() {
        let delays = (1...10).map { RestartBackoff.delay(failuresInARow: $0, initial: .milliseconds(500), maximum: .seconds(60)) }
        #expect(Array(delays.prefix(4)) == [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4)])
        #expect(delays.last == .seconds(60))
    }
}
