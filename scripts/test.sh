#!/usr/bin/env bash
# voxd's full check, as CI runs it (.ci/run):
#   1. scripts/setup.sh --reference               packages, Rust target/components, models, .venv/
#   2. scripts/reference/reference.py numeric     numeric references the tests read (data/reference/)
#   3. cargo fmt --check
#   4. cargo clippy --all-targets -- -D warnings
#   5. cargo test --release                       unit tests, then the two integration-test
#                                                 binaries: tests/it/, then tests/live/
#   6. cargo test --release --target aarch64-unknown-linux-gnu --lib kernels
#      (the NEON kernels, built with aarch64-linux-gnu-gcc and run under qemu-aarch64)
#   7. scripts/fuzz.sh 30                 every fuzz target for 30 s (fuzz/)
# Stops at the first failing step.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# The aarch64 linker and runner (.cargo/config.toml says the same; the environment wins, so the
# NEON step works with or without that file).
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER:-aarch64-linux-gnu-gcc}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER:-qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib}"

TOTAL=7
n=0
step() {
    n=$((n + 1))
    echo
    echo "==> test.sh step $n/$TOTAL: $*"
    local t0=$SECONDS
    "$@"
    echo "==> test.sh step $n/$TOTAL done in $((SECONDS - t0)) s"
}

step bash scripts/setup.sh --reference
step python3 scripts/reference/reference.py numeric
step cargo fmt --all -- --check
step cargo clippy --all-targets -- -D warnings
step cargo test --release
step cargo test --release --target aarch64-unknown-linux-gnu --lib kernels
step bash scripts/fuzz.sh 30

echo
echo "==> test.sh: all $TOTAL steps passed"
