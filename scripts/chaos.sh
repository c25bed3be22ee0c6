#!/bin/sh
# The full chaos test: checkpointed pipelines (a word count; a sliding window with updateStateByKey) run for 200
# batches while being killed with SIGKILL at random moments at least 100 times; their output must be byte-identical to
# an uninterrupted run. The test suite runs the same tests in a short form (50 batches, 20 kills).
set -eu
cd "$(dirname "$0")/.."
swift build --build-tests
SLUICE_CHAOS_FULL=1 swift test --skip-build --filter ChaosTests
