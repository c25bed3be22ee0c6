// swift-tools-version: 6.3
//
// The Sluice plugin SDK: everything a plugin author's package depends on, and nothing outside the toolchain.
// It is a package of its own so that building a plugin resolves only this directory (the root package brings NIO,
// swift-crypto, Yams and argument-parser for the host). The root package uses it by path; keep it dependency-free.
//
// SluiceLoader lives here, not in the host, because the conformance checker (SluiceConformance) must load a built .so
// exactly as the host does, and a SwiftPM target can only use targets of its own package or of its dependencies.

import PackageDescription

// The same strict settings as the root package (kept in step by hand: a manifest cannot import another).
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "SluiceSDK",
    platforms: [.macOS(.v15)],
    products: [
        // What a Swift plugin imports (it re-exports CSluice).
        .library(name: "SluiceSDK", targets: ["SluiceSDK"]),
        // The plugin test kit, for a plugin's test target (it re-exports SluiceConformance).
        .library(name: "SluiceTesting", targets: ["SluiceTesting"]),
        // The .so conformance checker alone (and `Record`): for `sluice plugins check`, which must not link the test kit.
        .library(name: "SluiceConformance", targets: ["SluiceConformance"]),
        // The C ABI alone, and the loader: used by the host (the root package); plugins need neither directly.
        .library(name: "CSluice", targets: ["CSluice"]),
        .library(name: "SluiceLoader", targets: ["SluiceLoader"]),
    ],
    targets: [
        // The C ABI: CSluice/include/sluice.h is the single source of truth.
        .target(name: "CSluice", path: "CSluice"),
        // The Swift SDK that plugin authors import. Depends on nothing but the ABI header.
        .target(name: "SluiceSDK", dependencies: ["CSluice"], path: "SluiceSDK", swiftSettings: strictSettings),
        // dlopen and descriptor checks, shared by the host and the test kit's conformance checker.
        .target(
            name: "SluiceLoader",
            dependencies: ["CSluice", "SluiceSDK"],
            path: "SluiceLoader",
            swiftSettings: strictSettings
        ),
        // Checks a built .so for conformance, loading it with the host's loader; `Record` for building and comparing
        // batches.
        .target(
            name: "SluiceConformance",
            dependencies: ["SluiceSDK", "SluiceLoader"],
            path: "SluiceConformance",
            swiftSettings: strictSettings
        ),
        // The plugin test kit: runs a plugin type in-process; re-exports the conformance checker.
        .target(
            name: "SluiceTesting",
            dependencies: ["SluiceSDK", "SluiceLoader", "SluiceConformance"],
            path: "SluiceTesting",
            swiftSettings: strictSettings
        ),
    ]
)
