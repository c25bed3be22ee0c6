// swift-tools-version: 6.3
//
// Sluice: the root package for the host, the first-party plugins and the tests. The plugin SDK (CSluice, SluiceSDK,
// SluiceLoader, SluiceConformance, SluiceTesting) is the package in SDK/, used here by path; its products are not
// re-vended here (a product can only hold its own package's targets): a plugin depends on the SDK package, not on
// this one.
// Plugins live under Plugins/ with explicit paths: SwiftPM treats a bare Plugins/ folder as package plugins.

import PackageDescription

// MARK: - Dependencies

/// The plugin SDK: a package of its own that fetches nothing, so that a plugin's package depends on it alone.
/// A path dependency's identity is its directory's name ("sdk").
let sdk = Package.Dependency.package(path: "SDK")
let cSluice = Target.Dependency.product(name: "CSluice", package: "sdk")
let sluiceSDK = Target.Dependency.product(name: "SluiceSDK", package: "sdk")
let sluiceLoader = Target.Dependency.product(name: "SluiceLoader", package: "sdk")
let sluiceTesting = Target.Dependency.product(name: "SluiceTesting", package: "sdk")
let sluiceConformance = Target.Dependency.product(name: "SluiceConformance", package: "sdk")
let argumentParser = Package.Dependency.package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
let yams = Package.Dependency.package(url: "https://github.com/jpsim/Yams", from: "6.2.2")
let propertyBased = Package.Dependency.package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1")
let nio = Package.Dependency.package(url: "https://github.com/apple/swift-nio", from: "2.101.2")
let crypto = Package.Dependency.package(url: "https://github.com/apple/swift-crypto", from: "3.12.3")
let nioSSL = Package.Dependency.package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6")
let serviceLifecycle = Package.Dependency.package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0")
let serviceLifecycleProduct = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let swiftLog = Package.Dependency.package(url: "https://github.com/apple/swift-log", from: "1.16.2")
let swiftMetrics = Package.Dependency.package(url: "https://github.com/apple/swift-metrics", from: "2.13.0")
let hummingbird = Package.Dependency.package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1")
let prometheus = Package.Dependency.package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1")
// The `sluice serve` client commands' HTTP (over NIO, as the server's): not URLSession, whose FoundationNetworking
// links libcurl and its libraries into every start of `sluice`.
let asyncHTTPClient = Package.Dependency.package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0")

// MARK: - Settings shared by every Swift target

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// A first-party plugin: its code, a target under Plugins/ (which unit tests may depend on); its entry symbol, a
/// target under Plugins/Entries/ (apart, so that tests can link several plugins' code into one binary); and a dynamic
/// library product of the two, named `Sluice<target>` (`libSluice<target>.so`: `libSluiceSocketSource.so`, …).
func plugin(_ target: String, dependencies: [Target.Dependency] = []) -> ([Target], Product) {
    (
        [
            .target(
                name: target,
                dependencies: [sluiceSDK] + dependencies,
                path: "Plugins/\(target)",
                swiftSettings: strictSettings
            ),
            .target(
                name: "\(target)Entry",
                dependencies: [.target(name: target), sluiceSDK],
                path: "Plugins/Entries/\(target)",
                swiftSettings: strictSettings
            ),
        ],
        .library(name: "Sluice\(target)", type: .dynamic, targets: ["\(target)Entry"])
    )
}

let firstPartyPlugins = [
    plugin("FileWatchSource", dependencies: ["DurableRecords"]),
    plugin("SocketSource", dependencies: ["DurableRecords"]),
    plugin("SplitTransform", dependencies: ["CSeparatorMask"]),
    plugin("ConsoleSink"),
    plugin("FilesSink", dependencies: ["DurableRecords"]),
    plugin("NoopTransform"),
    plugin(
        "EventHubsSource",
        dependencies: [
            "SluiceEventHubs", "SluiceAMQP", "DurableRecords", .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]
    ),
]

/// First-party helpers for durable files (`package` access, not SDK API): the checksummed record format of the
/// sources' logs (file-watch's index, the socket WAL) and the atomic, durable file replacement every first-party
/// writer uses (`DurableDirectory`, `AtomicFile`).
let durableRecords = Target.target(
    name: "DurableRecords", path: "Plugins/Shared/DurableRecords", swiftSettings: strictSettings
)

// MARK: - Targets

let package = Package(
    name: "sluice",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        .executable(name: "sluice-eventhubs-emulator", targets: ["sluice-eventhubs-emulator"]),
        .library(name: "SluiceCore", targets: ["SluiceCore"]),
        .library(name: "SluiceHost", targets: ["SluiceHost"]),
        .library(name: "Sluice", targets: ["Sluice"]),
    ] + firstPartyPlugins.map(\.1),
    dependencies: [
        sdk, argumentParser, yams, propertyBased, nio, crypto, nioSSL, serviceLifecycle, swiftLog, swiftMetrics, hummingbird,
        prometheus, asyncHTTPClient,
    ],
    targets: [
        // The engine: batches, keyed aggregation, plans, scheduling. No dlopen, files or sockets.
        .target(
            name: "SluiceCore",
            dependencies: [cSluice, sluiceSDK, "CPrefetch"],
            path: "Sources/SluiceCore",
            swiftSettings: strictSettings
        ),
        // A cache prefetch hint for the hash tables (C: Swift has none).
        .target(name: "CPrefetch", path: "Sources/CPrefetch"),
        // split's search for separators 64 bytes at a time (C: SSE2's movemask has no Swift equivalent).
        .target(name: "CSeparatorMask", path: "Plugins/Shared/CSeparatorMask"),
        // The host: plugin registry, pipeline files, the runner with its clock, signals and progress output.
        .target(
            name: "SluiceHost",
            dependencies: [
                "SluiceCore", sluiceLoader, "SluiceFunctions", "DurableRecords", .product(name: "Yams", package: "Yams"),
                serviceLifecycleProduct,
                .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/SluiceHost",
            swiftSettings: strictSettings
        ),
        // `sluice serve`: Livy's batch API, the supervision of one child process per pipeline, statistics, /metrics.
        .target(
            name: "SluiceServe",
            dependencies: [
                "SluiceHost", "SluiceCore", .product(name: "Hummingbird", package: "hummingbird"), serviceLifecycleProduct,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HummingbirdCore", package: "hummingbird"), .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/SluiceServe",
            // The Streaming tab's page, script and style sheet, compiled in: the server ships as one file.
            resources: [.embedInCode("Web")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SluiceCLI",
            dependencies: [
                "SluiceHost", "SluiceServe", "SluiceFunctions", sluiceSDK, sluiceConformance,
                .product(name: "ArgumentParser", package: "swift-argument-parser"), serviceLifecycleProduct,
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/SluiceCLI",
            swiftSettings: strictSettings
        ),
        // The typed Swift API: StreamingContext and DStream, building the same graph as the pipeline file.
        .target(
            name: "Sluice",
            dependencies: ["SluiceCore", "SluiceHost", sluiceLoader, sluiceSDK, .product(name: "Logging", package: "swift-log")],
            path: "Sources/Sluice",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "swift-wordcount",
            dependencies: ["Sluice"],
            path: "examples/swift-api",
            swiftSettings: strictSettings
        ),
        .systemLibrary(name: "CFFI", path: "Sources/CFFI", pkgConfig: "libffi", providers: [.apt(["libffi-dev"])]),
        .target(
            name: "SluiceFunctions",
            dependencies: ["CFFI", "SluiceCore", sluiceSDK, .product(name: "Yams", package: "Yams")],
            path: "Sources/SluiceFunctions",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "sluice", dependencies: ["SluiceCLI", "CProcessSettings"], path: "Sources/sluice", swiftSettings: strictSettings
        ),
        // The executable's process-wide malloc setting (C: <malloc.h> is not in Swift's Glibc module).
        .target(name: "CProcessSettings", path: "Sources/CProcessSettings"),
        // AMQP 1.0: the type system, frames, performatives, SASL and messages (for the Event Hubs source and emulator).
        .target(
            name: "SluiceAMQP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/SluiceAMQP",
            swiftSettings: strictSettings
        ),

        // MARK: - Tests

        .testTarget(
            name: "SluiceSDKTests",
            dependencies: [sluiceSDK, sluiceLoader, sluiceTesting],
            path: "Tests/SluiceSDKTests",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceCoreTests",
            dependencies: ["SluiceCore", sluiceSDK, .product(name: "PropertyBased", package: "swift-property-based")],
            path: "Tests/SluiceCoreTests",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceHostTests",
            dependencies: [
                "SluiceHost", sluiceLoader, sluiceSDK, sluiceTesting, "EventHubsEmulator",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/SluiceHostTests",
            exclude: ["Fixtures"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceAPITests",
            dependencies: ["Sluice", .product(name: "PropertyBased", package: "swift-property-based")],
            path: "Tests/SluiceAPITests",
            swiftSettings: strictSettings
        ),
        // Event Hubs: connection strings, SAS tokens, and (with the AMQP stack) the client and the emulator.
        .target(
            name: "SluiceEventHubs",
            dependencies: [
                "SluiceAMQP", .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/SluiceEventHubs",
            swiftSettings: strictSettings
        ),
        // The Event Hubs emulator: a library (tests start it in-process) and its executable.
        .target(
            name: "EventHubsEmulator",
            dependencies: [
                "SluiceAMQP", "SluiceEventHubs", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/EventHubsEmulator",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "sluice-eventhubs-emulator",
            dependencies: [
                "EventHubsEmulator", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/sluice-eventhubs-emulator",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceEventHubsTests",
            dependencies: [
                "SluiceEventHubs", "SluiceAMQP", "EventHubsEmulator", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/SluiceEventHubsTests",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceAMQPTests",
            dependencies: ["SluiceAMQP", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/SluiceAMQPTests",
            swiftSettings: strictSettings
        ),
        // Unit tests of the first-party plugins' internals (`@testable import`) and of each plugin as a whole through
        // SluiceTesting's PluginHarness. They depend on a plugin's code target, never on its entry target.
        .testTarget(
            name: "SocketSourceTests",
            dependencies: ["SocketSource", sluiceSDK, sluiceTesting],
            path: "Tests/SocketSourceTests",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SplitTransformTests",
            dependencies: ["SplitTransform", sluiceSDK, sluiceTesting],
            path: "Tests/SplitTransformTests",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "FileWatchSourceTests",
            dependencies: ["FileWatchSource", sluiceSDK, sluiceTesting],
            path: "Tests/FileWatchSourceTests",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DurableRecordsTests",
            dependencies: ["DurableRecords", sluiceTesting],
            path: "Tests/DurableRecordsTests",
            swiftSettings: strictSettings
        ),
        // `sluice serve` over real sockets: the built `sluice` binary as the server and as its pipelines' processes.
        .testTarget(
            name: "SluiceServeTests",
            dependencies: ["SluiceServe", "SluiceHost"],
            path: "Tests/SluiceServeTests",
            // The Streaming tab's browser test (Python, run by StreamingTabBrowserTests).
            exclude: ["browser"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [sluiceSDK],
            path: "Tests/EndToEndTests",
            swiftSettings: strictSettings
        ),
    ] + [durableRecords] + firstPartyPlugins.flatMap(\.0)
)
