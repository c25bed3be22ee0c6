import DurableRecords
import SluiceSDK

/// The Event Hubs source's map of partition indices (`partitions.tsv` in its state directory: one line
/// `INDEX<TAB>HUB<TAB>PARTITION` per stream partition, indices from 0), so that a stream partition's index — the key
/// of its committed position — means the same hub partition after a restart, even when partitions were added.
/// Replaced atomically and durably whenever partitions are added: the map never exists half-written.
struct PartitionMapFile {
    static let name = "partitions.tsv"
    let directory: DurableDirectory
    var path: String { directory.path(of: Self.name) }

    /// Opens the state directory, removing what a write torn by a crash left there.
    init(directory path: String) throws {
        do { directory = try DurableDirectory(path: path) } catch { throw PluginError("\(error)") }
        directory.removeStaleTemporaries(prefix: Self.name)
    }

    /// The (hub, partition id) of each index, in index order; empty when there is no map yet.
    func read() throws -> [(hub: String, id: String)] {
        let bytes: [UInt8]
        do {
            guard let contents = try directory.read(Self.name) else { return [] }
            bytes = contents
        } catch { throw PluginError("\(error)") }
        var list: [(hub: String, id: String)] = []
        for (number, line) in String(decoding: bytes, as: UTF8.self).split(separator: "\n").enumerated() {
            let fields = line.split(separator: "\t").map(String.init)
            guard fields.count == 3, Int(fields[0]) == number else {
                throw PluginError("\(path) line \(number + 1): expected 'INDEX<TAB>HUB<TAB>PARTITION' with indices from 0; the file is damaged")
            }
            list.append((fields[1], fields[2]))
        }
        return list
    }

    /// Replaces the map with `partitions`, in index order.
    func write(_ partitions: [(hub: String, id: String)]) throws {
        let text = partitions.enumerated().map { "\($0.offset)\t\($0.element.hub)\t\($0.element.id)\n" }.joined()
        do { try directory.writeAtomically(Array(text.utf8), to: Self.name) } catch {
            throw PluginError("cannot record the partition map: \(error)")
        }
    }
}
