/// The largest values a pipeline file may give. Each guards something that would otherwise trap or exhaust the host:
/// durations past `Int` overflow the batch clock, a window keeps one table per batch it covers, each keyed partition
/// holds its own tables, and a batch's planned range must fit in a partition's 64-bit offsets. `docs/pipeline.md`
/// lists them; a value past a limit is an error naming the key and the limit.
public enum PipelineLimits {
    /// `batch_interval`: at most a day.
    public static let batchIntervalMilliseconds = 24 * 3_600_000
    /// Any other duration (window, slide, timeout), before it is turned into batches: at most 366 days.
    public static let durationMilliseconds = 366 * 24 * 3_600_000
    /// `window` and `slide`, in batch intervals: a window keeps the aggregate of every batch it covers.
    public static let windowBatches = 100_000
    /// `timeout` of mapWithState, in batch intervals (a key's last update is kept as a batch number).
    public static let timeoutBatches = 100_000_000
    /// `partitions` of a keyed or repartitioning stage.
    public static let partitions = 1024
    /// `max_records_per_partition`: records one batch may plan from one source partition.
    public static let recordsPerPartition = 1_000_000_000
}
