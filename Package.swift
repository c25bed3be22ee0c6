// swift-tools-version: 6.3
//
// Sluice: one root package for the host, the plugin SDK, the first-party plugins and the tests.
// Plugins live under Plugins/ with explicit paths: SwiftPM treats a bare Plugins/ folder as package plugins.

import PackageDescription

// MARK: - Dependencies

let argumentParser = Package.Dependency.package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
let yams = Package.Dependency.package(url: "https://github.com/jpsim/Yams", from: "6.2.2")
let propertyBased = Package.Dependency.package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1")
let nio = Package.Dependency.package(url: "https://github.com/apple/swift-nio", from: "2.101.2")
let crypto = Package.Dependency.package(url: "https://github.com/apple/swift-crypto", from: "3.12.3")
let nioSSL = Package.Dependency.package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6")

// MARK: - Settings shared by every Swift target

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// A first-party plugin: a target under Plugins/ and a dynamic library product `lib<product>.so`.
func plugin(_ target: String, product: String, dependencies: [Target.Dependency] = []) -> (Target, Product) {
    (
        .target(
            name: target,
            dependencies: ["SluiceSDK"] + dependencies,
            path: "Plugins/\(target)",
            swiftSettings: strictSettings
        ),
        .library(name: product, type: .dynamic, targets: [target])
    )
}

let firstPartyPlugins = [
    plugin("FileWatchSource", product: "SluiceFileWatch", dependencies: ["DurableRecords"]),
    plugin("SocketSource", product: "SluiceSocket", dependencies: ["DurableRecords"]),
    plugin("SplitTransform", product: "SluiceSplit"),
    plugin("ConsoleSink", product: "SluiceConsole"),
    plugin("FilesSink", product: "SluiceFiles"),
    plugin("NoopTransform", product: "SluiceNoop"),
    plugin(
        "EventHubsSource", product: "SluiceEventHubsSource",
        dependencies: [
            "SluiceEventHubs", "SluiceAMQP", .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]
    ),
]

/// The checksummed record format of the first-party sources' durable files (file-watch's index, the socket WAL).
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
        .library(name: "SluiceSDK", targets: ["SluiceSDK"]),
        .library(name: "SluiceTesting", targets: ["SluiceTesting"]),
        .library(name: "SluiceCore", targets: ["SluiceCore"]),
        .library(name: "SluiceHost", targets: ["SluiceHost"]),
        .library(name: "Sluice", targets: ["Sluice"]),
    ] + firstPartyPlugins.map(\.1),
    dependencies: [argumentParser, yams, propertyBased, nio, crypto, nioSSL],
    targets: [
        // The C ABI: SDK/CSluice/include/sluice.h is the single source of truth.
        .target(name: "CSluice", path: "SDK/CSluice"),
        // The Swift SDK that plugin authors import. Depends on nothing but the ABI header.
        .target(name: "SluiceSDK", dependencies: ["CSluice"], path: "SDK/SluiceSDK", swiftSettings: strictSettings),
        // dlopen and descriptor checks, shared by the host and the test kit's conformance checker.
        .target(
            name: "SluiceLoader",
            dependencies: ["CSluice", "SluiceSDK"],
            path: "Sources/SluiceLoader",
            swiftSettings: strictSettings
        ),
        // The plugin test kit: runs a plugin type in-process, and checks a built .so for conformance.
        .target(
            name: "SluiceTesting",
            dependencies: ["SluiceSDK", "SluiceLoader"],
            path: "SDK/SluiceTesting",
            swiftSettings: strictSettings
        ),
        // The engine: batches, keyed aggregation, plans, scheduling. No dlopen, files or sockets.
        .target(
            name: "SluiceCore",
            dependencies: ["CSluice", "SluiceSDK"],
            path: "Sources/SluiceCore",
            swiftSettings: strictSettings
        ),
        // The host: plugin registry, pipeline files, the runner with its clock, signals and progress output.
        .target(
            name: "SluiceHost",
            dependencies: ["SluiceCore", "SluiceLoader", "SluiceFunctions", .product(name: "Yams", package: "Yams")],
            path: "Sources/SluiceHost",
            swiftSettings: strictSettings
        ),
        .target(
            name: "SluiceCLI",
            dependencies: [
                "SluiceHost", "SluiceFunctions", "SluiceSDK", "SluiceTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/SluiceCLI",
            swiftSettings: strictSettings
        ),
        // The typed Swift API: StreamingContext and DStream, building the same graph as the pipeline file.
        .target(
            name: "Sluice",
            dependencies: ["SluiceCore", "SluiceHost", "SluiceLoader", "SluiceSDK"],
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
            dependencies: ["CFFI", "SluiceCore", "SluiceSDK", .product(name: "Yams", package: "Yams")],
            path: "Sources/SluiceFunctions",
            swiftSettings: strictSettings
        ),
        .executableTarget(name: "sluice", dependencies: ["SluiceCLI"], path: "Sources/sluice", swiftSettings: strictSettings),
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
            dependencies: ["SluiceSDK", "SluiceTesting"],
            path: "Tests/SluiceSDKTests",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceCoreTests",
            dependencies: ["SluiceCore", "SluiceSDK", .product(name: "PropertyBased", package: "swift-property-based")],
            path: "Tests/SluiceCoreTests",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceHostTests",
            dependencies: [
                "SluiceHost", "SluiceLoader", "SluiceSDK", "SluiceTesting",
                .product(name: "PropertyBased", package: "swift-property-based"),
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
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["SluiceSDK"],
            path: "Tests/EndToEndTests",
            swiftSettings: strictSettings
        ),
    ] + [durableRecords] + firstPartyPlugins.map(\.0)
)
