#!/bin/sh
# The full chaos test: checkpointed pipelines (a word count; a sliding window with updateStateByKey) run for 200
# batches while being killed with SIGKILL at least 100 times, each kill just after a batch no earlier run reported;
# every batch's output must equal counts computed independently from the input. The socket source runs under 100
# kills. The test suite runs the same tests in a short form (50 batches, 20 kills).
set -eu
cd "$(dirname "$0")/.."
swift build --build-tests
SLUICE_CHAOS_FULL=1 swift test --skip-build --filter ChaosTests
