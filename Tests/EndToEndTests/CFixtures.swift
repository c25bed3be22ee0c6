import Foundation
import Synchronization
import Testing

/// C shared objects the end-to-end tests build with gcc (plugins from `Tests/SluiceHostTests/Fixtures`, the C
/// example, function libraries). gcc runs once per source and flags in a test process; every caller gets a copy of
/// its own at the path it asks for, so each is a library of its own to the loader.
enum CFixtures {
    static let fixtures = Support.repoRoot.appendingPathComponent("Tests/SluiceHostTests/Fixtures")
    private static let built = Mutex<[String: URL]>([:])

    /// Builds `source` (a path, or a file name in the host tests' fixtures) with every warning an error and the
    /// ABI header on the include path, and places the result at `output`.
    static func sharedObject(_ source: String, to output: URL, flags: [String] = []) throws {
        let sourcePath = source.hasPrefix("/") ? source : fixtures.appendingPathComponent(source).path
        let original = try built.withLock { cache throws -> URL in
            let key = ([sourcePath] + flags).joined(separator: "\u{0}")
            if let url = cache[key] { return url }
            let url = try Support.makeTemporaryDirectory("sluice-cfixture").appendingPathComponent(output.lastPathComponent)
            let gcc = try Support.run(
                "/usr/bin/env",
                ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", "-fvisibility=hidden",
                 "-I", Support.repoRoot.appendingPathComponent("SDK/CSluice/include").path,
                 "-o", url.path, sourcePath] + flags
            )
            try #require(gcc.status == 0, "gcc failed on \(source): \(gcc.stderr)")
            cache[key] = url
            return url
        }
        try FileManager.default.copyItem(at: original, to: output)
    }
}
