import Foundation
import Testing

/// The C configuration helper (SDK/CSluice/include/sluice_config.h): its C unit tests compile with the strictest
/// flags the header promises and pass, under the address and undefined-behaviour sanitizers.
struct ConfigHelperTests {
    @Test func theCUnitTestsPass() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let program = directory.appendingPathComponent("config_helper_test").path
        let compile = Process()
        compile.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        compile.arguments = [
            "gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all", "-I", TestPaths.repoRoot.appendingPathComponent("SDK/CSluice/include").path,
            "-o", program, TestPaths.fixtures.appendingPathComponent("config_helper_test.c").path,
        ]
        try compile.run()
        compile.waitUntilExit()
        try #require(compile.terminationStatus == 0, "gcc failed on config_helper_test.c")

        let run = Process()
        let output = Pipe()
        run.executableURL = URL(fileURLWithPath: program)
        run.standardOutput = output
        run.standardError = output
        try run.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        run.waitUntilExit()
        #expect(run.terminationStatus == 0, "\(text)")
        #expect(text.contains("all passed"), "\(text)")
    }
}
