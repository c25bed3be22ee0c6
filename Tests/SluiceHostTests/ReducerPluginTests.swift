import CSluice
import Foundation
import SluiceLoader
import SluiceSDK
import SluiceTesting
import Testing

/// Reducer plugins (ABI 1.1): a C reducer loads, passes the conformance checks, and a 1.0-sized descriptor that
/// claims to be a reducer is refused.
@Suite(.serialized)
struct ReducerPluginTests {
    @Test func aCReducerLoadsAndConforms() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try PluginLoaderTests.compile("c_sum_reducer.c", into: directory, as: "libcsum")
        let plugin = try PluginLoader.load(path: path)
        #expect(plugin.kind == .reducer)
        #expect(plugin.abiDescription == "\(SLUICE_ABI_MAJOR).\(SLUICE_ABI_MINOR)", "built against the current header")
        let report = PluginConformance.check(path: path)
        #expect(report.passed, "\(report)")
        #expect(report.checks.map(\.name).contains("is associative"))
        #expect(report.checks.map(\.name).contains("inverts what it combined"))
    }

    @Test func aReducerWithAnABI10DescriptorIsRefused() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try PluginLoaderTests.compile("c_sum_reducer.c", into: directory, as: "libold", flags: ["-DSLUICE_TEST_OLD_DESCRIPTOR"])
        let error = #expect(throws: PluginLoadError.self) { _ = try PluginLoader.load(path: path) }
        #expect(error?.code == .descriptorTooSmall)
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("reducers need ABI 1.1") == true, "\(error?.description ?? "")")
    }

    @Test func aPluginBuiltForABI10StillLoadsAndRuns() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try PluginLoaderTests.compile("good_c_transform.c", into: directory, as: "libold", flags: ["-DSLUICE_TEST_AS_1_0"])
        let plugin = try PluginLoader.load(path: path)
        #expect(plugin.abiDescription == "1.0")
        #expect(plugin.functions.reduce_combine == nil, "fields past a 1.0 descriptor read as zero")
        // The fixture ignores its configuration (so "refuses an unknown option" fails); the calls must work.
        let report = PluginConformance.check(path: path)
        let calls = report.checks.filter { $0.name.hasPrefix("transforms") }
        #expect(calls.count == 2 && calls.allSatisfy(\.passed), "\(report)")
    }
}
