// swift-tools-version: 6.3
//
// The Sluice plugin SDK: everything a plugin author's package depends on, and nothing outside the toolchain.
// It is a package of its own so that building a plugin resolves only this directory (the root package brings NIO,
// swift-crypto, Yams and argument-parser for the host). The root package uses it by path; keep it dependency-free.
//
// SluiceLoader lives here, not in the host, because SluiceTesting's conformance checker must load a built .so exactly
// as the host does, and a SwiftPM target can only use targets of its own package or of its dependencies.

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
        // The plugin test kit, for a plugin's test target.
        .library(name: "SluiceTesting", targets: ["SluiceTesting"]),
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
        // The plugin test kit: runs a plugin type in-process, and checks a built .so for conformance.
        .target(
            name: "SluiceTesting",
            dependencies: ["SluiceSDK", "SluiceLoader"],
            path: "SluiceTesting",
            swiftSettings: strictSettings
        ),
    ]
)
