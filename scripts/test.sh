#!/usr/bin/env bash
# voxd's full check, as CI runs it (.ci/run):
#   1. scripts/setup.sh --reference               packages, Rust target/components, models, .venv/
#   2. scripts/reference/reference.py numeric     numeric references the tests read (data/reference/)
#   3. cargo fmt --check
#   4. cargo clippy --all-targets -- -D warnings
#   5. cargo test --release                       unit tests of every crate of the workspace, then
#                                                 the two integration-test binaries: tests/it/,
#                                                 then tests/live/
#   6. cargo test --release --target aarch64-unknown-linux-gnu -p voxd-kernels
#      (the NEON kernels, with and without dotprod, built with aarch64-linux-gnu-gcc and run
#      under qemu-aarch64; the kernels are a crate of their own, crates/kernels, so this
#      builds nothing else)
#   7. FUZZ_SANITIZER=none scripts/fuzz.sh 20
#                                                 every fuzz target for 20 s (fuzz/), built
#                                                 without the address sanitizer, whose build
#                                                 takes a quarter more CPU (the long local runs,
#                                                 scripts/fuzz.sh 3600, keep it)
# Stops at the first failing step.
#
# The builds of steps 6 and 7 (the aarch64 test binary, the fuzz targets with their
# sanitizer) start in the background after step 1, at the lowest priority: they use the CPU
# the other steps leave idle (links, reference tools, the real-time tests of tests/live/),
# and the tests run at full priority, unaffected. Each has its own target directory, so
# neither waits for cargo's lock on target/. Their logs: target/ci/*.log.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# The aarch64 linker and runner (.cargo/config.toml says the same; the environment wins, so the
# NEON step works with or without that file). `-cpu max` emulates the dot product extension,
# so that the neon-dotprod kernels are tested beside the baseline NEON ones.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER:-aarch64-linux-gnu-gcc}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER:-qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib}"

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

# The aarch64 kernel tests: built in their own target directory (see above), without debug
# info: nothing reads it there, and it only lengthens the build.
NEON_TEST=(env CARGO_PROFILE_RELEASE_DEBUG=false
    cargo test --release --target aarch64-unknown-linux-gnu --target-dir target/neon -p voxd-kernels)

# Starts `name`'s build in the background at the lowest priority; `await_build name` waits.
declare -A build_pid
start_build() {
    local name="$1"
    shift
    mkdir -p target/ci
    # Its own process group (setsid), so that a failing step can stop it with its children.
    # setsid also makes a new session, which the kernel schedules as a group of its own
    # (autogroup) whatever the nice value of its processes: the group's own nice is set too.
    setsid bash -c 'echo 19 >/proc/self/autogroup 2>/dev/null || true; exec nice -n 19 "$@"' \
        background "$@" >"target/ci/$name.log" 2>&1 &
    build_pid[$name]=$!
}
stop_builds() {
    local pid
    for pid in "${build_pid[@]}"; do
        kill -- "-$pid" 2>/dev/null || true
    done
}
trap stop_builds EXIT
await_build() {
    local name="$1"
    if ! wait "${build_pid[$name]}"; then
        tail -n 40 "target/ci/$name.log" >&2
        echo "test.sh: the background build '$name' failed (target/ci/$name.log)" >&2
        return 1
    fi
    echo "test.sh: background build '$name' ready"
}
neon_tests() {
    await_build neon
    "${NEON_TEST[@]}"
}
fuzz_run() {
    await_build fuzz
    FUZZ_SANITIZER=none bash scripts/fuzz.sh 20
}

step bash scripts/setup.sh --reference
start_build neon "${NEON_TEST[@]}" --no-run
start_build fuzz env FUZZ_SANITIZER=none bash scripts/fuzz.sh --build
step python3 scripts/reference/reference.py numeric
step cargo fmt --all -- --check
step cargo clippy --all-targets -- -D warnings
step cargo test --release
step neon_tests
step fuzz_run

echo
echo "==> test.sh: all $TOTAL steps passed"
