/// What one stage (or sink) of the graph did in one batch, measured by the executor per call on a chunk of records
/// and summed per batch, never per record: the figures stay cheap however large the batch.
public struct StageFigures: Sendable, Equatable {
    /// The stage's node name (a sink's name for a sink).
    public var stage: String
    /// Records that reached the stage: for a source, the records it read; for a sink, the records given to it.
    public var recordsIn: Int
    /// Records the stage passed on: for a source, the records it read; for a sink, the records it committed.
    public var recordsOut: Int
    /// Time spent in the stage's own calls (not in the stages after it), summed over the tasks that ran it in
    /// parallel, so it may exceed the batch's wall time. A sink's time leaves out the waits between its retries.
    public var nanoseconds: UInt64

    public init(stage: String, recordsIn: Int, recordsOut: Int, nanoseconds: UInt64) {
        self.stage = stage
        self.recordsIn = recordsIn
        self.recordsOut = recordsOut
        self.nanoseconds = nanoseconds
    }
}
