#!/usr/bin/env bash
# Fuzzes every parser of outside input (fuzz/fuzz_targets/, cargo-fuzz with libFuzzer).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   each target for SECONDS (default 30); all targets
#                                           unless some are named
#   scripts/fuzz.sh 3600                    the long local run: one hour per target
#   FUZZ_JOBS=1 scripts/fuzz.sh ...         one target at a time (default: one per core)
#   scripts/fuzz.sh --build                 only build the targets (test.sh does this in the
#                                           background while the tests run)
#   FUZZ_SANITIZER=none scripts/fuzz.sh ... without the address sanitizer (test.sh's short
#                                           runs: a quarter less to build; panics, overflows,
#                                           timeouts and memory limits are still caught)
#
# Builds the targets once (address sanitizer unless FUZZ_SANITIZER says otherwise, debug
# assertions and overflow checks on; each sanitizer has its own target directory), then
# runs each from its seed corpus (fuzz/corpus/TARGET, committed, read-only here) plus a working
# corpus of what earlier runs found (fuzz/work/TARGET, git-ignored, kept between runs). Prints
# per target the run length, executions, executions per second and the result. A crash, an
# input slower than 10 s, or one needing more than 2 GB is a failure: the script names the
# target and the input libFuzzer saved (fuzz/artifacts/TARGET/...) and exits 1 after the
# remaining targets have run. Replay one input with
#   fuzz/target/address/x86_64-unknown-linux-gnu/release/TARGET fuzz/artifacts/TARGET/crash-...
#
# Needs cargo-fuzz (scripts/setup.sh installs it). Works on the stable toolchain: cargo-fuzz
# passes the compiler -Z flags for the sanitizer and coverage, which RUSTC_BOOTSTRAP allows.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

build_only=false
if [ "${1:-}" = "--build" ]; then
    build_only=true
    shift
fi
seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: SECONDS must be a whole number above 0, got '$seconds'" >&2
    exit 2
fi
shift || true

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is not installed (scripts/setup.sh installs it)" >&2
    exit 2
fi

mapfile -t all_targets < <(cd fuzz && cargo fuzz list)
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=("${all_targets[@]}")
fi
for t in "${targets[@]}"; do
    # A here-string, not a pipe: `grep -q` stops at the first match, and under pipefail the
    # writer's SIGPIPE would fail the test now and then.
    if ! grep -qx -- "$t" <<<"$(printf '%s\n' "${all_targets[@]}")"; then
        echo "fuzz.sh: no fuzz target '$t' (targets: ${all_targets[*]})" >&2
        exit 2
    fi
done

sanitizer="${FUZZ_SANITIZER:-address}"
case "$sanitizer" in
    address | none) ;;
    *)
        echo "fuzz.sh: FUZZ_SANITIZER must be address or none, got '$sanitizer'" >&2
        exit 2
        ;;
esac
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="fuzz/target/$sanitizer/$triple/release"
t0=$SECONDS
mkdir -p fuzz/work
# Four codegen units as in the main release profile (cargo-fuzz's default is one, which
# compiles voxd's crate on a single core: twice the wall time on two cores).
if ! (cd fuzz && cargo fuzz build --release --debug-assertions --codegen-units 4 \
    --sanitizer "$sanitizer" --target-dir "target/$sanitizer") >fuzz/work/build.log 2>&1; then
    tail -n 40 fuzz/work/build.log >&2
    echo "fuzz.sh: building the fuzz targets failed (fuzz/work/build.log)" >&2
    exit 1
fi
echo "fuzz.sh: built the fuzz targets (sanitizer: $sanitizer) in $((SECONDS - t0)) s"
if $build_only; then
    exit 0
fi

# One target's run; its result line goes to fuzz/work/TARGET.result.
fuzz_one() {
    local t="$1"
    local work="fuzz/work/$t" artifacts="fuzz/artifacts/$t" log="fuzz/work/$t.log"
    mkdir -p "$work" "$artifacts"
    local start=$SECONDS status=0
    "$bin_dir/$t" "$work" "fuzz/corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    local took=$((SECONDS - start))
    local runs rate result
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    if [ "$status" -eq 0 ]; then
        result="ok"
    else
        local input kind where
        input="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        # A panic's message and the first frame in this repository; else the sanitizer's or
        # libFuzzer's verdict (timeout, out-of-memory, heap-buffer-overflow, ...).
        kind="$(grep -m 1 -A 1 'panicked at' "$log" | tail -n 1 || true)"
        if [ -n "$kind" ]; then
            where="$(grep -m 1 -oE 'at \./(src|fuzz_targets)/[^ ]+\.rs:[0-9]+' "$log" || true)"
            kind="panic: $kind${where:+ ${where/.\//}}"
        else
            kind="$(grep -m 1 -oE 'ERROR: [A-Za-z]+: [a-z-]+' "$log" || true)"
        fi
        result="FAILED (exit $status${kind:+, $kind}): input ${input:-not saved}, log $log"
    fi
    printf '%-18s %8s %12s %10s  %s\n' "$t" "$took" "${runs:-?}" "${rate:-?}" "$result" \
        >"fuzz/work/$t.result"
}

# As many targets at once as there are cores (FUZZ_JOBS overrides): each libFuzzer process
# is single-threaded, so this cuts the wall time without shortening any target's run.
parallel="${FUZZ_JOBS:-$(nproc)}"
echo "fuzz.sh: ${#targets[@]} targets, ${seconds} s each, $parallel at a time"
for t in "${targets[@]}"; do
    rm -f "fuzz/work/$t.result"
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do
        wait -n || true
    done
    fuzz_one "$t" &
done
wait

failed=()
printf '%-18s %8s %12s %10s  %s\n' target seconds executions "exec/s" result
for t in "${targets[@]}"; do
    line="$(cat "fuzz/work/$t.result" 2>/dev/null || echo "$t  no result (the run did not finish)")"
    echo "$line"
    case "$line" in
        *" ok") ;;
        *) failed+=("$t") ;;
    esac
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${seconds} s each, no crash"
