import CSluice
import Foundation
import SluiceLoader
import SluiceSDK
import SluiceTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The host checks every batch a plugin returns (docs/abi.md §6), before anything else reads it, and reports a bad
/// one against the plugin that made it, naming the field. One C fixture, `bad_batch.c`, returns a batch with one
/// chosen defect; built as a transform and as a source.
@Suite(.serialized)
struct BatchValidationTests {
    /// Each defect the fixture can make, and the words the host must use for it.
    static let defects: [(defect: String, field: String)] = [
        ("struct_size", "struct_size = 0 is less than the 96 bytes of an ABI 1.0 batch"),
        ("value_type", "value_type = 7 is unknown"),
        ("value_offsets_null", "value_offsets is NULL but count = 3"),
        ("value_offsets_decrease", "value_offsets[3] = 10 is less than value_offsets[2] = 12"),
        ("value_offsets_past_end", "value_offsets[3] = 20 is past the end of value_data (value_data_len = 15)"),
        ("value_data_null", "value_data is NULL but value_data_len = 15"),
        ("key_offsets_decrease", "key_offsets[3] = 10 is less than key_offsets[2] = 12"),
        ("key_offsets_past_end", "key_offsets[3] = 20 is past the end of key_data (key_data_len = 15)"),
        ("key_data_null", "key_data is NULL but key_data_len = 15"),
        ("release_null", "release is NULL but count = 3"),
        ("int64_short", "value_data_len = 16 is less than 8 × count = 3 × 8"),
        ("int64_misaligned", "value_data (INT64) is not 8-byte aligned"),
        ("int64_offsets", "value_offsets is not NULL, but an INT64 batch has no offsets"),
    ]

    /// The fixture built once per kind, in a directory that lives for the test process (plugins are never unloaded).
    static let built: (transform: LoadedPlugin, source: LoadedPlugin) = {
        let directory = try! TestPaths.temporaryDirectory()
        let transform = try! PluginLoaderTests.compile("bad_batch.c", into: directory, as: "libbad-transform")
        let source = try! PluginLoaderTests.compile("bad_batch.c", into: directory, as: "libbad-source", flags: ["-DAS_SOURCE"])
        return (try! PluginLoader.load(path: transform), try! PluginLoader.load(path: source))
    }()

    /// How many batches of `plugin` have been released so far (the fixture counts them in an exported variable).
    static func releases(of plugin: LoadedPlugin) throws -> Int32 {
        let handle = try #require(dlopen(plugin.path, RTLD_NOW | RTLD_NOLOAD))
        let counter = try #require(dlsym(handle, "bad_batch_releases"))
        return counter.assumingMemoryBound(to: Int32.self).pointee
    }

    static func instance(_ plugin: LoadedPlugin, _ defect: String) throws -> PluginInstance {
        try PluginInstance(plugin: plugin, name: "bad", configJSON: #"{"defect":"\#(defect)"}"#) { _, _, _ in }
    }

    @Test(arguments: defects.map(\.defect))
    func aTransformsMalformedBatchIsAnErrorNamingThePluginAndTheField(defect: String) throws {
        let plugin = Self.built.transform
        let field = try #require(Self.defects.first { $0.defect == defect }?.field)
        let instance = try Self.instance(plugin, defect)
        let before = try Self.releases(of: plugin)
        do {
            _ = try instance.transform(.of([Record("x")]))
            Issue.record("the host accepted a batch with \(defect)")
        } catch {
            let expected = "plugin 'c-bad-batch' (\(plugin.path)), stage 'bad': transform returned a batch whose \(field)"
            #expect("\(error)".hasPrefix(expected), "\(error)")
        }
        // A refused batch that has a release is released (once); one without cannot be.
        #expect(try Self.releases(of: plugin) - before == (defect == "release_null" ? 0 : 1))
    }

    @Test(arguments: defects.map(\.defect) + ["count"])
    func aSourcesMalformedBatchIsAnErrorNamingThePluginAndTheField(defect: String) throws {
        let plugin = Self.built.source
        let field = try #require((Self.defects + [("count", "count = 2 differs from the 3 offsets asked for")])
            .first { $0.defect == defect }?.field)
        let instance = try Self.instance(plugin, defect)
        do {
            _ = try instance.read(partition: 0, offsets: 0..<3)
            Issue.record("the host accepted a batch with \(defect)")
        } catch {
            let expected = "plugin 'c-bad-source' (\(plugin.path)), source 'bad': read of partition 0 [0, 3) returned a batch whose \(field)"
            #expect("\(error)".hasPrefix(expected), "\(error)")
        }
    }

    @Test func aWellFormedBatchPasses() throws {
        let output = try Self.instance(Self.built.transform, "none").transform(.of([]))
        #expect(output.records == [Record("one"), Record("two"), Record("three")])
        let read = try Self.instance(Self.built.source, "none").read(partition: 0, offsets: 0..<3)
        #expect(read.count == 3)
    }

    /// The host zero-fills `*out` and sets `struct_size`, so a transform with nothing to return may leave it alone:
    /// an empty batch with every pointer NULL, release included, is valid.
    @Test func anUntouchedOutputIsAValidEmptyBatch() throws {
        let output = try Self.instance(Self.built.transform, "untouched").transform(.of([Record("dropped")]))
        #expect(output.count == 0)
        #expect(Int(output.raw.struct_size) == MemoryLayout<sluice_batch>.size)
        #expect(output.raw.release == nil && output.raw.value_offsets == nil)
    }

    /// `commit` is optional: a source without it loads, and the host's commit is then a no-op.
    @Test func aSourceWithoutCommitLoadsAndCommits() throws {
        let plugin = Self.built.source
        #expect(plugin.functions.commit == nil)
        try Self.instance(plugin, "none").commit(partition: 0, upTo: 3)
    }

    /// The conformance checker applies the host's rules: it fails the same defect with the same words, and passes
    /// an empty batch without release.
    @Test func theCheckerAgreesWithTheHost() throws {
        let bad = PluginConformance.check(path: Self.built.transform.path, config: #"{"defect":"value_offsets_decrease"}"#)
        #expect(!bad.passed)
        #expect(bad.failures.contains { $0.detail.contains("value_offsets[3] = 10 is less than value_offsets[2] = 12") }, "\(bad)")
        let empty = PluginConformance.check(path: Self.built.transform.path, config: #"{"defect":"untouched"}"#)
        #expect(empty.passed, "\(empty)")
        let source = PluginConformance.check(path: Self.built.source.path, config: #"{"defect":"count"}"#)
        #expect(source.failures.contains { $0.detail.contains("count = 2 differs from the 3 offsets asked for") }, "\(source)")
    }

    /// A decrease anywhere in a long batch is found and named, wherever it falls among the offsets tested eight at
    /// a time or in the last few tested one at a time.
    @Test func aDecreaseAnywhereInALongBatchIsNamed() {
        let count = 37
        let data = [UInt8](repeating: 65, count: 2 * count + 1)
        for wrong in 1...count {
            var offsets = (0...count).map { UInt32(2 * $0 + 1) }
            offsets[wrong] = offsets[wrong - 1] - 1
            let problem = offsets.withUnsafeBufferPointer { offsets in
                data.withUnsafeBufferPointer { data in
                    var batch = sluice_batch()
                    batch.struct_size = UInt32(BatchRules.minimumSize)
                    batch.value_type = UInt32(SLUICE_VALUE_BYTES)
                    batch.count = UInt64(count)
                    batch.value_offsets = offsets.baseAddress
                    batch.value_data = data.baseAddress
                    batch.value_data_len = UInt64(data.count)
                    batch.release = { _ in }
                    return BatchRules.violation(in: batch)
                }
            }
            let expected = "value_offsets[\(wrong)] = \(offsets[wrong]) is less than value_offsets[\(wrong - 1)] = \(offsets[wrong - 1])"
            #expect(problem == expected, "offset \(wrong)")
        }
    }

    /// The sizes docs/abi.md states are the sizes of the structs.
    @Test func theStatedSizesAreTheStructSizes() {
        #expect(BatchRules.minimumSize == 96 && MemoryLayout<sluice_batch>.size == 96)
        #expect(PluginLoader.minimumDescriptorSize == Int(SLUICE_PLUGIN_V1_SIZE_1_0) && SLUICE_PLUGIN_V1_SIZE_1_0 == 152)
    }
}
