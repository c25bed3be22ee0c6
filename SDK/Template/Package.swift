// swift-tools-version: 6.3
//
// An out-of-tree Sluice plugin. Copy this directory to start your own:
//   1. point the "sluice" dependency at the Sluice repository (a path, or its URL and a version),
//   2. rename the module (ReverseWords) and the plugin name in PluginInfo ("template-reverse"),
//   3. swift build -c release, and copy .build/release/lib<Product>.so into a plugins directory.

import PackageDescription

let package = Package(
    name: "ReverseWords",
    products: [
        // The plugin: a dynamic library that exports sluice_plugin_entry_v1.
        .library(name: "ReverseWords", type: .dynamic, targets: ["ReverseWords"])
    ],
    dependencies: [
        // Inside the Sluice repository the SDK is two directories up. Elsewhere use, for example:
        // .package(url: "https://example.com/you/sluice.git", from: "0.1.0")
        .package(name: "sluice", path: "../..")
    ],
    targets: [
        .target(name: "ReverseWords", dependencies: [.product(name: "SluiceSDK", package: "sluice")]),
        .testTarget(
            name: "ReverseWordsTests",
            dependencies: ["ReverseWords", .product(name: "SluiceTesting", package: "sluice")]
        ),
    ]
)
