import ArgumentParser
import Foundation
import SluiceConformance
import SluiceHost
import SluiceLoader
import SluiceSDK

struct Plugins: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "List and inspect the plugins sluice can load.",
        subcommands: [List.self, Inspect.self, Check.self],
        defaultSubcommand: List.self
    )
}

extension Plugins {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Check a built plugin file against the ABI (the test kit's conformance checks).",
            discussion: """
                Loads the file as the host does, then exercises it: descriptor, schema, configuration handling \
                (an unknown option must be refused by name), and the calls of its kind: a transform gets sample \
                batches, a source is read twice over the same range, a sink writes and commits a batch, a reducer \
                combines sample values, a state updater updates a new key, its state and an idle key. Exits 1 \
                when a check fails. Sources and sinks usually need --config with their required options.
                """
        )

        @Argument(help: "The plugin's .so file.")
        var path: String

        @Option(help: "The configuration to create the instance with, as JSON.")
        var config = "{}"

        @Flag(
            name: .customLong("allow-insecure-plugins"),
            help: "Check the file even if group or others could have written it (or its directory), with a warning."
        )
        var allowInsecurePlugins = false

        func run() throws {
            guard FileManager.default.fileExists(atPath: path) else {
                printError("sluice: \(path): no such file")
                throw ExitCode(2)
            }
            let report = PluginConformance.check(
                path: PluginLoader.absolutePath(path), config: config, allowInsecure: allowInsecurePlugins
            )
            print(report)
            if !report.passed { throw ExitCode(1) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List loadable plugins (name, kind, version, ABI, path); refused files are reported on stderr."
        )

        @OptionGroup var plugins: PluginOptions

        func run() throws {
            let catalog = plugins.catalog()
            let rows = catalog.sorted.map { [$0.name, $0.kind.rawValue, $0.version, $0.abiDescription, $0.path] }
            printTable(header: ["NAME", "KIND", "VERSION", "ABI", "PATH"], rows: rows)
            if rows.isEmpty {
                printError("sluice: no plugins found in: \(catalog.directories.joined(separator: ", "))")
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inspect",
            abstract: "Show a plugin's description and configuration options."
        )

        @Argument(help: "The plugin name, as in `sluice plugins list`.")
        var name: String

        @OptionGroup var plugins: PluginOptions

        func run() throws {
            let catalog = plugins.catalog()
            guard let plugin = catalog.plugins[name] else {
                printError("sluice: no plugin named '\(name)'" + didYouMeanName(name, catalog))
                throw ExitCode(2)
            }
            print("\(plugin.name) \(plugin.version) (\(plugin.kind.rawValue))")
            if !plugin.summary.isEmpty { print("  \(plugin.summary)") }
            print("  path:       \(plugin.path)")
            print("  abi:        \(plugin.abiDescription)")
            print("  build:      \(plugin.buildInfo)")
            print("  concurrent: \(plugin.isConcurrent ? "yes" : "no")")
            switch plugin.kind {
            case .reducer: print("  use:        {op: reduceByKey (or another keyed operation), function: \(plugin.name)}")
            case .stateUpdater: print("  use:        {op: updateStateByKey, function: \(plugin.name)}")
            case .source, .transform, .sink: break
            }
            print("")
            guard !plugin.schema.options.isEmpty else {
                print("Options: none")
                return
            }
            print("Options:")
            let rows = plugin.schema.options.map { option -> [String] in
                var type = option.kind.rawValue
                if !option.allowed.isEmpty { type = option.allowed.joined(separator: "|") }
                if option.isPath { type = option.isOutputPath ? "output path" : "path" }
                if option.isSecret { type = "secret" }
                if let pattern = option.pattern { type += " matching \(pattern)" }
                let value = option.required ? "(required)" : (option.defaultJSON.map { "default \($0)" } ?? "(optional)")
                return ["  " + option.name, type, value, option.description]
            }
            printTable(header: nil, rows: rows)
        }
    }
}

private func didYouMeanName(_ name: String, _ catalog: PluginCatalog) -> String {
    let names = catalog.plugins.keys.sorted()
    let hint = didYouMean(name, among: names)
    return hint.isEmpty ? "; available: " + names.joined(separator: ", ") : hint
}

/// Prints rows as left-aligned columns.
func printTable(header: [String]?, rows: [[String]]) {
    let all = (header.map { [$0] } ?? []) + rows
    guard let columns = all.map(\.count).max() else { return }
    var widths = [Int](repeating: 0, count: columns)
    for row in all { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    for row in all {
        let cells = row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "  "))
    }
}
