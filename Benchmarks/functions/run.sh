#!/bin/sh
# The cost of calling a C function through libffi, per value, one call per value and one call per batch, against
# the same arithmetic in Swift. Usage: Benchmarks/functions/run.sh   (after swift build -c release)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/bench-out/functions"
mkdir -p "$out"
gcc -std=c11 -O2 -shared -fPIC -fvisibility=hidden -o "$out/libmathfns.so" "$here/mathfns.c"
cp "$here/mathfns.functions.yaml" "$out/"
exec "$root/.build/release/sluice" bench functions --manifest "$out/mathfns.functions.yaml" "$@"
