// swift-tools-version: 6.3
//
// An out-of-tree Sluice plugin. Copy this directory to start your own:
//   1. point the SDK dependency at the Sluice SDK package (the SDK/ directory of a Sluice checkout, see below),
//   2. rename the module (ReverseWords) and the plugin name in PluginInfo ("template-reverse"),
//   3. swift build -c release, and copy .build/release/lib<Product>.so into a plugins directory.

import PackageDescription

// Swift 6 language mode plus the upcoming features Sluice itself builds with.
let strictSettings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility")]

let package = Package(
    name: "ReverseWords",
    products: [
        // The plugin: a dynamic library that exports sluice_plugin_entry_v1.
        .library(name: "ReverseWords", type: .dynamic, targets: ["ReverseWords"])
    ],
    dependencies: [
        // The SDK package (SluiceSDK, SluiceTesting) is this directory's parent; it depends on nothing outside the
        // toolchain, so building a plugin fetches nothing. Elsewhere, point the path at a Sluice checkout's SDK
        // directory, e.g. a git submodule: .package(path: "vendor/sluice/SDK"). SwiftPM reads a URL dependency's
        // manifest at the repository root, which is the host's package, not the SDK. A path dependency's identity
        // is its last path component ("sdk"), which the products below name.
        .package(path: "..")
    ],
    targets: [
        .target(
            name: "ReverseWords",
            dependencies: [.product(name: "SluiceSDK", package: "sdk")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ReverseWordsTests",
            dependencies: ["ReverseWords", .product(name: "SluiceTesting", package: "sdk")],
            swiftSettings: strictSettings
        ),
    ]
)
