/// A batch received across the ABI that this side now owns: `release` runs exactly once, when the last reference
/// goes away.
///
/// A batch may borrow buffers from other batches (a transform's output may point into its input); those are kept
/// alive in ``dependencies`` until this batch is released.
public final class OwnedBatch: @unchecked Sendable {  // immutable after init; release happens once, in deinit
    /// The C batch. Its pointers are valid until this object is deinitialised.
    public private(set) var raw: sluice_batch
    /// Batches whose buffers this one may point into.
    public let dependencies: [OwnedBatch]

    /// Takes ownership of `raw`.
    public init(taking raw: sluice_batch, dependencies: [OwnedBatch] = []) {
        self.raw = raw
        self.dependencies = dependencies
    }

    /// Finishes a builder into an owned batch.
    public convenience init(_ builder: consuming BatchBuilder) {
        var batch = sluice_batch()
        builder.finish(into: &batch)
        self.init(taking: batch)
    }

    /// A read-only view; valid while this object is alive.
    public var view: BatchView { BatchView(raw) }

    /// The number of records.
    public var count: Int { Int(raw.count) }

    /// Calls `body` with a pointer to the C batch, borrowed for the call (for handing it to a plugin).
    public func withUnsafePointer<R>(_ body: (UnsafePointer<sluice_batch>) throws -> R) rethrows -> R {
        try Swift.withUnsafePointer(to: &raw, body)
    }

    deinit {
        if let release = raw.release { release(&raw) }
    }
}
