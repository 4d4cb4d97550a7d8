#!/usr/bin/env bash
# Runs every cargo fuzz target (fuzz/fuzz_targets) for SECONDS each (default 60) on its
# committed corpus, which grows with what the run finds. A crash fails the script and
# leaves its input under fuzz/artifacts/TARGET/. The long runs (10 minutes or more each)
# are made by hand: scripts/fuzz.sh 600.
#
# cargo fuzz builds with sanitizer flags that only nightly compilers take; on a stable
# toolchain RUSTC_BOOTSTRAP=1 lets it use them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    echo "fuzzing $target for ${seconds}s"
    cargo fuzz run -O "$target" "corpus/$target" -- -max_total_time="$seconds" 2>&1 | tail -2
done
