public import Foundation

/// What `sluice serve` is told at its start. The server reads nothing from the process (arguments, environment,
/// signals): the command line fills this in.
public struct ServeConfiguration: Sendable {
    /// The address to listen on; port 0 picks a free port (the chosen one is passed to `onListening`).
    public var host: String
    public var port: Int
    /// Every route is served under this prefix (`/livy`, as HDInsight does); empty for none.
    public var basePath: String
    /// Where submitted batches, their checkpoints and logs are kept (`batches/<id>/`).
    public var dataDirectory: URL
    /// The `sluice` executable each pipeline runs in (`sluice run`).
    public var executable: URL
    /// Directories the pipelines may load plugins from, passed to every child as `--plugin-dir`.
    public var pluginDirectories: [URL]
    /// Directories a submitted `file` must be under (after resolving symbolic links).
    public var allowedDirectories: [URL]
    /// The largest request body read; larger ones get 413.
    public var maximumBodyBytes: Int
    /// Log lines kept in memory per batch for `/log` (the whole log is also on disk, rotated at `logFileBytes`).
    public var logLinesKept: Int
    public var logFileBytes: Int
    /// Batches kept per pipeline for the statistics API (Spark's `spark.streaming.ui.retainedBatches`).
    public var batchesKept: Int
    /// How long a pipeline may take to stop after SIGTERM before it gets SIGKILL.
    public var stopTimeout: Duration
    /// `restart: on-failure`: the first wait before a restart, doubled after each failure in a row up to the maximum.
    public var restartInitialDelay: Duration
    public var restartMaximumDelay: Duration
    /// How often each pipeline's resident memory is checked against its limit.
    public var memoryCheckInterval: Duration
    /// Extra environment for the children (tests use it for crash points); the server's own environment is passed on
    /// otherwise, less `SLUICE_PLUGIN_PATH` (the server's plugin directories are the ones allowed).
    public var childEnvironment: [String: String]
    /// Who may use the API; nil admits everyone (the command requires credentials off loopback).
    public var credentials: ServeCredentials?
    /// HTTPS instead of HTTP, when given.
    public var tls: ServeTLS?

    public init(dataDirectory: URL, executable: URL) {
        host = "127.0.0.1"
        port = 8998
        basePath = ""
        self.dataDirectory = dataDirectory
        self.executable = executable
        pluginDirectories = []
        allowedDirectories = []
        maximumBodyBytes = 1 << 20
        logLinesKept = 1000
        logFileBytes = 8 << 20
        batchesKept = 1000
        stopTimeout = .seconds(30)
        restartInitialDelay = .milliseconds(500)
        restartMaximumDelay = .seconds(60)
        memoryCheckInterval = .seconds(1)
        childEnvironment = [:]
    }
}
