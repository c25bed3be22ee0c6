/// `restart: on-failure`'s wait before restart number `failuresInARow`: the initial delay doubled for each failure
/// in a row, at most the maximum. A completed batch resets the count, so a pipeline that ran for a while and then
/// failed is restarted quickly, and one that cannot start stops hammering its sources.
enum RestartBackoff {
    static func delay(failuresInARow: Int, initial: Duration, maximum: Duration) -> Duration {
        var delay = initial
        for _ in 1..<max(1, failuresInARow) {
            delay *= 2
            if delay >= maximum { return maximum }
        }
        return min(delay, maximum)
    }
}
