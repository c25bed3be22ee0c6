import ArgumentParser
import EventHubsEmulator
import Foundation
import NIOSSL

/// A line on standard output, unbuffered (tests read the port from it).
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

/// `sluice-eventhubs-emulator`: a local Event Hubs for development and tests.
@main
struct EmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-eventhubs-emulator",
        abstract: "A local Azure Event Hubs endpoint (AMQP 1.0) for development and tests.",
        discussion: """
            Serves event hubs with partitions and consumer groups, checks shared access signatures against the \
            configured keys, and answers $management reads. Point the official SDKs or Sluice's eventhubs source at it \
            with a connection string such as:

              Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true

            Commands on standard input inject faults: 'drop' (close every connection), 'restart SECONDS' (stop \
            listening, close every connection, listen again after SECONDS; events are kept), 'stall SECONDS' (deliver \
            nothing for a while), 'busy N' (answer the next N requests with com.microsoft:server-busy), \
            'refuse-late SECONDS' (send the detach that refuses a link SECONDS after the attach answer), \
            'steal HUB PARTITION [GROUP]' (amqp:link:stolen to the partition's receivers), 'quit'; \
            'connections' prints 'connections accepted=N open=M' before its 'ok'; and \
            'grow HUB PARTITIONS' adds partitions to a hub; 'expire HUB PARTITION [SEQUENCE]' makes the partition's \
            events before sequence number SEQUENCE (all of them without it) expire now, as --retention would; 'produce HUB PARTITION COUNT TEXT...' appends COUNT events whose body is TEXT with {i} replaced by the \
            event's number (0 to COUNT-1) and {p} by the partition.
            """
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one; the port is printed).") var port = 5672
    @Option(name: .customLong("hub"), help: "An event hub, NAME or NAME:PARTITIONS (default 4 partitions); repeat for more.")
    var hubs: [String] = []
    @Option(name: .customLong("consumer-group"), help: "A consumer group besides $Default, as HUB/NAME; repeat for more.")
    var consumerGroups: [String] = []
    @Option(name: .customLong("key"), help: "A shared access key, NAME=KEY (default RootManageSharedAccessKey=SAS_KEY_VALUE); repeat for more.")
    var keys: [String] = []
    @Option(help: "Drop events older than this many seconds (default: keep them).") var retention: Double?
    @Option(
        name: .customLong("config"),
        help: "A JSON file: {\"hubs\": [{\"name\": \"eh1\", \"partitions\": 4, \"consumer_groups\": [\"cg1\"]}], \"keys\": {\"NAME\": \"KEY\"}, \"retention_seconds\": 3600} (flags add to it)."
    )
    var configFile: String?
    @Option(name: .customLong("tls-certificate"), help: "Serve TLS with this PEM certificate (chain).") var tlsCertificate: String?
    @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-certificate.") var tlsKey: String?
    @Flag(help: "Do not log connections, refusals and events produced.") var quiet = false

    func validate() throws {
        if (tlsCertificate == nil) != (tlsKey == nil) { throw ValidationError("--tls-certificate and --tls-key go together") }
    }

    /// The `--config` file's shape.
    struct ConfigFile: Decodable {
        struct Hub: Decodable {
            var name: String
            var partitions: Int?
            var consumer_groups: [String]?
        }
        var hubs: [Hub]?
        var keys: [String: String]?
        var retention_seconds: Double?
    }

    func run() async throws {
        var hubList: [EmulatorConfiguration.Hub] = []
        var keyMap: [String: String] = [:]
        var retention = retention
        if let configFile {
            let file: ConfigFile
            do { file = try JSONDecoder().decode(ConfigFile.self, from: Data(contentsOf: URL(fileURLWithPath: configFile))) } catch {
                throw ValidationError("--config \(configFile): \(error)")
            }
            hubList = (file.hubs ?? []).map { .init(name: $0.name, partitionCount: $0.partitions ?? 4, consumerGroups: $0.consumer_groups ?? []) }
            keyMap = file.keys ?? [:]
            retention = retention ?? file.retention_seconds
        }
        for spec in hubs.isEmpty && hubList.isEmpty ? ["eh1:4"] : hubs {
            let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
            guard let name = parts.first, parts.count == 1 || Int(parts[1]) != nil else {
                throw ValidationError("--hub \(spec): expected NAME or NAME:PARTITIONS")
            }
            hubList.append(.init(name: name, partitionCount: parts.count == 2 ? Int(parts[1])! : 4))
        }
        for spec in consumerGroups {
            let parts = spec.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let index = hubList.firstIndex(where: { $0.name.lowercased() == parts[0].lowercased() }) else {
                throw ValidationError("--consumer-group \(spec): expected HUB/NAME for a hub given with --hub")
            }
            hubList[index].consumerGroups.append(parts[1])
        }
        for spec in keys {
            guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex else { throw ValidationError("--key: expected NAME=KEY") }
            keyMap[String(spec[..<equals])] = String(spec[spec.index(after: equals)...])
        }
        let configuration = EmulatorConfiguration(
            hubs: hubList, keys: keyMap.isEmpty ? ["RootManageSharedAccessKey": "SAS_KEY_VALUE"] : keyMap, retentionSeconds: retention
        )
        var tls: NIOSSLContext?
        if let tlsCertificate, let tlsKey {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(tlsCertificate).map { NIOSSLCertificateSource.certificate($0) }
                let key = try NIOSSLPrivateKey(file: tlsKey, format: .pem)
                tls = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
            } catch {
                throw ValidationError("cannot load the TLS certificate or key (\(tlsCertificate), \(tlsKey)): \(error)")
            }
        }
        let quiet = quiet
        let emulator: EventHubsEmulator
        do {
            emulator = try EventHubsEmulator(configuration: configuration) { line in
                if !quiet { FileHandle.standardError.write(Data("emulator: \(line)\n".utf8)) }
            }
        } catch {
            throw ValidationError(error.description)
        }
        let bound = try await emulator.start(host: host, port: port, tls: tls)
        let hubText = hubList.map { "\($0.name) (\($0.partitionCount) partitions)" }.joined(separator: ", ")
        say("listening on \(host):\(bound)\(tls == nil ? "" : " (TLS)"): \(hubText)")
        let (name, key) = configuration.keys.sorted { $0.key < $1.key }[0]
        say("connection string: Endpoint=sb://\(host):\(bound);SharedAccessKeyName=\(name);SharedAccessKey=\(key)\(tls == nil ? ";UseDevelopmentEmulator=true" : "")")

        // Fault commands on standard input, until it closes or says quit.
        while let line = readLine() {
            let words = line.split(separator: " ").map(String.init)
            switch words.first {
            case "drop": emulator.dropConnections()
            case "stall" where words.count == 2 && Double(words[1]) != nil: emulator.faults.stall(seconds: Double(words[1])!)
            case "busy" where words.count == 2 && Int(words[1]) != nil: emulator.faults.serverBusy(count: Int(words[1])!)
            case "steal" where words.count >= 3 && Int(words[2]) != nil:
                emulator.stealPartition(hub: words[1], consumerGroup: words.count > 3 ? words[3] : "$Default", partition: Int(words[2])!)
            case "produce" where words.count >= 5 && Int(words[2]) != nil && Int(words[3]) != nil:
                let partition = Int(words[2])!
                let template = words[4...].joined(separator: " ").replacingOccurrences(of: "{p}", with: String(partition))
                let bodies = (0..<Int(words[3])!).map { Array(template.replacingOccurrences(of: "{i}", with: String($0)).utf8) }
                do { try emulator.produce(hub: words[1], partition: partition, bodies: bodies) } catch {
                    FileHandle.standardError.write(Data("emulator: produce: \(error)\n".utf8))
                    say("error \(line)")
                    continue
                }
            case "grow" where words.count == 3 && Int(words[2]) != nil:
                do { try emulator.grow(hub: words[1], partitions: Int(words[2])!) } catch {
                    FileHandle.standardError.write(Data("emulator: grow: \(error)\n".utf8))
                    say("error \(line)")
                    continue
                }
            case "expire" where (words.count == 3 || words.count == 4) && Int(words[2]) != nil && (words.count == 3 || Int64(words[3]) != nil):
                do { try emulator.expire(hub: words[1], partition: Int(words[2])!, before: words.count == 4 ? Int64(words[3])! : nil) } catch {
                    FileHandle.standardError.write(Data("emulator: expire: \(error)\n".utf8))
                    say("error \(line)")
                    continue
                }
            case "restart" where words.count == 2 && Double(words[1]) != nil:
                do { try await emulator.restart(downFor: Double(words[1])!) } catch {
                    FileHandle.standardError.write(Data("emulator: restart: \(error)\n".utf8))
                    say("error \(line)")
                    continue
                }
            case "refuse-late" where words.count == 2 && Double(words[1]) != nil: emulator.faults.delayRefusals(seconds: Double(words[1])!)
            case "connections": say("connections accepted=\(emulator.acceptedConnections) open=\(emulator.connectionCount)")
            case "quit": try await emulator.stop(); return
            case nil: continue
            default:
                FileHandle.standardError.write(Data("emulator: unknown command '\(line)' (drop, restart SECONDS, stall SECONDS, busy N, refuse-late SECONDS, steal HUB PARTITION [GROUP], grow HUB PARTITIONS, expire HUB PARTITION [SEQUENCE], produce HUB PARTITION COUNT TEXT, connections, quit)\n".utf8))
                say("error \(line)")
                continue
            }
            say("ok \(line)")
        }
        // Standard input closed: keep serving until killed.
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}
