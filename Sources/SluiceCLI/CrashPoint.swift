import Foundation
import SluiceHost

#if canImport(Glibc)
import Glibc
#endif

/// The crash tests' hook, read from the environment by the command line only (the scheduler knows nothing of it):
/// `SLUICE_TEST_CRASH=POINT:BATCH` kills the process with SIGKILL at that point of that batch — `after-plan` (the plan
/// is recorded, nothing read), `after-sinks` (every sink committed, the checkpoint not yet), `after-commit` (the
/// checkpoint committed, the sources not yet told) — so the tests can hit the narrow windows a random kill rarely does.
enum CrashPoint {
    static func observer(environment: [String: String]) -> (@Sendable (CommitCycle.Phase, UInt64) throws -> Void)? {
        guard let text = environment["SLUICE_TEST_CRASH"] else { return nil }
        let parts = text.split(separator: ":")
        let phases: [String: CommitCycle.Phase] = ["after-plan": .recorded, "after-sinks": .ran, "after-commit": .committed]
        guard parts.count == 2, let phase = phases[String(parts[0])], let batch = UInt64(parts[1]) else { return nil }
        return { reached, id in
            if reached == phase && id == batch { kill(getpid(), SIGKILL) }
        }
    }
}
