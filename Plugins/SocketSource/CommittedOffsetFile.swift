import DurableRecords
import SluiceSDK

/// Where a socket source without a write-ahead log, in a checkpointed pipeline, keeps its last committed offset
/// (`committed-offset` in its state directory, the offset in decimal and a newline): lines held in memory at a crash
/// are lost, but numbering continues after the last commit so that the committed position stays meaningful (at most
/// once). Replaced atomically and durably at each commit.
struct CommittedOffsetFile {
    static let name = "committed-offset"
    let directory: DurableDirectory

    /// Opens the state directory, removing what a write torn by a crash left there.
    init(directory path: String) throws {
        do { directory = try DurableDirectory(path: path) } catch { throw PluginError("\(error)") }
        directory.removeStaleTemporaries(prefix: Self.name)
    }

    /// The offset recorded last; 0 when none was.
    func read() throws -> UInt64 {
        let bytes: [UInt8]
        do {
            guard let contents = try directory.read(Self.name) else { return 0 }
            bytes = contents
        } catch { throw PluginError("\(error)") }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let offset = UInt64(text.hasSuffix("\n") ? String(text.dropLast()) : text) else {
            throw PluginError("\(directory.path(of: Self.name)) does not hold an offset ('\(text)'); remove it, or reset the checkpoint directory")
        }
        return offset
    }

    /// Records `offset`, durably.
    func write(_ offset: UInt64) throws {
        do { try directory.writeAtomically(Array("\(offset)\n".utf8), to: Self.name) } catch {
            throw PluginError("cannot record the committed offset: \(error)")
        }
    }
}
