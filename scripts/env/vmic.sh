#!/usr/bin/env bash
# A private PulseAudio virtual microphone for the capture tests (no sound card needed).
#
#   scripts/env/vmic.sh start DIR            start a private server in DIR (idempotent); prints env
#   scripts/env/vmic.sh play DIR FILE.wav    play FILE into the virtual microphone (real-time paced)
#   scripts/env/vmic.sh stop DIR             stop the server (harmless when it is not running)
#   scripts/env/vmic.sh status DIR           exit 0 and describe it when running, else exit 1
#   scripts/env/vmic.sh selftest DIR [WAV]   play 6 s of WAV (default data/segmentation/
#                                        clean_48k_stereo.wav) while recording from the virtual
#                                        microphone; passes when the normalised
#                                        cross-correlation of the aligned signals is >= 0.99
#
# The server listens on DIR/native (anonymous auth) and has a null sink `vmic_sink` (48000 Hz,
# 2 channels, float32) whose monitor is remapped into a source `vmic`; both are the defaults,
# so a program started with DIR/env's variables captures what `play` plays, whether it opens
# PulseAudio directly or ALSA's `default` device (libasound2-plugins routes it to PulseAudio).
# DIR/env holds PULSE_SERVER=..., PULSE_RUNTIME_PATH=..., PULSE_STATE_PATH=... (KEY=VALUE, one
# per line, no quotes); DIR/pid the server's pid; DIR/pa.log its log. See
# ../shared/audio/README.md (section A) for the recipe and what was measured with it.
#
# Works as root: PulseAudio's "not intended to be run as root" warnings go to DIR/pa.log.
# VMIC_TIMEOUT (seconds, default 10) bounds the wait for the server; PYTHON picks the python
# with numpy for selftest (default .venv/bin/python, else python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SINK=vmic_sink
SOURCE=vmic
KEEPALIVE=vmic_keepalive
# The keepalive loopback only keeps the source streaming, and asks for a long latency: a source
# delivers to all its clients as often as its most demanding one asks, so a short latency here
# would make every capture client wake hundreds of times a second, as no microphone with voxd
# as its only client does.
KEEPALIVE_MS=1000
RATE=48000
CHANNELS=2

die() { echo "vmic: $*" >&2; exit 1; }
say() { echo "vmic: $*" >&2; }

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
CMD="$1"
DIR="$2"
shift 2

need_tools() {
    local t
    for t in pulseaudio pactl paplay parecord; do
        command -v "$t" >/dev/null 2>&1 ||
            die "$t not found: run scripts/setup.sh (it installs pulseaudio, pulseaudio-utils)"
    done
}

# The three variables every client of the private server needs (no quotes: DIR/env is read by
# tests as plain KEY=VALUE lines).
env_lines() {
    printf 'PULSE_SERVER=unix:%s\nPULSE_RUNTIME_PATH=%s\nPULSE_STATE_PATH=%s\n' \
        "$DIR/native" "$DIR/run" "$DIR/state"
}

use_env() {
    local key value
    while IFS='=' read -r key value; do
        [ -n "$key" ] && export "$key=$value"
    done < <(env_lines)
}

# pid of our server when it is alive (a reused pid of another program does not count).
server_pid() {
    local pid
    [ -f "$DIR/pid" ] || return 1
    pid="$(cat "$DIR/pid")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pulseaudio ] || return 1
    echo "$pid"
}

server_answers() { pactl info >/dev/null 2>&1; }

start() {
    need_tools
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    use_env
    if server_pid >/dev/null && server_answers; then
        env_lines
        return 0
    fi
    # A pid file without a live server is left over from a crash: start afresh.
    stop_server quiet
    # Unix socket paths are limited to 107 bytes.
    [ "${#DIR}" -le 96 ] || die "DIR path too long for a unix socket (${#DIR} > 96 bytes): $DIR"
    mkdir -p "$DIR/run" "$DIR/state"
    rm -f "$DIR/native"
    cat >"$DIR/default.pa" <<EOF
load-module module-native-protocol-unix auth-anonymous=1 socket=$DIR/native
load-module module-null-sink sink_name=$SINK rate=$RATE channels=$CHANNELS format=float32le sink_properties=device.description=VirtualMicSink
load-module module-remap-source source_name=$SOURCE master=$SINK.monitor source_properties=device.description=VirtualMic
load-module module-null-sink sink_name=$KEEPALIVE rate=$RATE channels=$CHANNELS format=float32le sink_properties=device.description=VirtualMicKeepalive
load-module module-loopback source=$SOURCE sink=$KEEPALIVE latency_msec=$KEEPALIVE_MS source_dont_move=1 sink_dont_move=1
set-default-sink $SINK
set-default-source $SOURCE
EOF
    # Not daemonized, so $! is the server itself; its output goes to files so that a caller
    # reading our stdout (VARS=$(vmic.sh start DIR)) is not kept waiting by the server.
    pulseaudio -n -F "$DIR/default.pa" --daemonize=no --exit-idle-time=-1 --use-pid-file=no \
        --realtime=no --high-priority=no --log-target="file:$DIR/pa.log" \
        </dev/null >"$DIR/pa.out" 2>&1 &
    local pid=$!
    echo "$pid" >"$DIR/pid"

    local timeout="${VMIC_TIMEOUT:-10}" waited=0
    until server_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$DIR/pid"
            tail -n 5 "$DIR/pa.log" "$DIR/pa.out" >&2 2>/dev/null || true
            die "pulseaudio exited during startup (log: $DIR/pa.log)"
        fi
        if [ "$(awk -v w="$waited" -v t="$timeout" 'BEGIN { print (w >= t) }')" = 1 ]; then
            stop_server quiet
            die "pulseaudio did not answer within ${timeout} s (log: $DIR/pa.log)"
        fi
        sleep 0.1
        waited="$(awk -v w="$waited" 'BEGIN { print w + 0.1 }')"
    done
    pactl list short sources 2>/dev/null | awk '{ print $2 }' | grep -qx "$SOURCE" ||
        { stop_server quiet; die "source $SOURCE missing after startup (log: $DIR/pa.log)"; }
    # A new null sink renders its first block only after its initial 2 s latency: wait until
    # the microphone really delivers audio (20 ms of it), so that a test capturing right after
    # `start` is not starved. The loopback in default.pa keeps it streaming from then on.
    local got
    got="$(timeout "$timeout" parecord -d "$SOURCE" --raw --latency-msec=20 --rate="$RATE" \
        --channels="$CHANNELS" --format=float32le 2>/dev/null | head -c 3840 | wc -c)" || true
    [ "$got" = 3840 ] ||
        { stop_server quiet; die "source $SOURCE delivered no audio within ${timeout} s (log: $DIR/pa.log)"; }
    env_lines >"$DIR/env"
    say "started pulseaudio (pid $pid) in $DIR"
    env_lines
}

stop_server() {
    local quiet="${1:-}" pid
    if pid="$(server_pid)"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
        [ -n "$quiet" ] || say "stopped pulseaudio (pid $pid)"
    else
        [ -n "$quiet" ] || say "not running"
    fi
    rm -f "$DIR/pid" "$DIR/env" "$DIR/native"
}

stop() {
    [ -d "$DIR" ] || { say "not running"; return 0; }
    DIR="$(cd "$DIR" && pwd)"
    stop_server
}

require_running() {
    [ -d "$DIR" ] || die "not running (scripts/env/vmic.sh start $DIR)"
    DIR="$(cd "$DIR" && pwd)"
    [ -f "$DIR/env" ] && server_pid >/dev/null || die "not running (scripts/env/vmic.sh start $DIR)"
    local key value
    while IFS='=' read -r key value; do
        [ -n "$key" ] && export "$key=$value"
    done <"$DIR/env"
}

status() {
    [ -d "$DIR" ] || { echo "vmic: not running"; return 1; }
    DIR="$(cd "$DIR" && pwd)"
    use_env
    local pid
    if pid="$(server_pid)" && server_answers; then
        echo "vmic: running (pid $pid) in $DIR"
        pactl info 2>/dev/null | grep -E '^(Server Name|Server Version|Default Sample Specification|Default Sink|Default Source):'
        pactl list short sources 2>/dev/null | grep -E "^[0-9]+[[:space:]]+$SOURCE[[:space:]]"
        return 0
    fi
    echo "vmic: not running"
    return 1
}

play() {
    [ $# -ge 1 ] || usage
    local file="$1"
    [ -f "$file" ] || die "no such file: $file"
    need_tools
    require_running
    paplay -d "$SINK" "$file"
}

selftest() {
    local file="${1:-$ROOT/data/segmentation/clean_48k_stereo.wav}"
    [ -f "$file" ] || die "no such file: $file (scripts/data/make_segmentation.py writes it)"
    command -v sox >/dev/null 2>&1 || die "sox not found: run scripts/setup.sh"
    local python="${PYTHON:-}"
    if [ -z "$python" ]; then
        if [ -x "$ROOT/.venv/bin/python" ]; then python="$ROOT/.venv/bin/python"; else python=python3; fi
    fi
    "$python" -c 'import numpy' 2>/dev/null ||
        die "$python has no numpy (scripts/setup.sh --reference makes .venv/, or set PYTHON)"

    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    local started_here=""
    if ! server_pid >/dev/null; then
        start >/dev/null
        started_here=1
        trap 'stop_server quiet' EXIT   # also when a step below fails
    fi
    require_running

    local played="$DIR/selftest_played.wav" recorded="$DIR/selftest_recorded.wav"
    sox -R -D -V1 "$file" -r "$RATE" -c "$CHANNELS" -e floating-point -b 32 "$played" trim 0 6
    rm -f "$recorded"
    parecord -d "$SOURCE" --rate="$RATE" --channels="$CHANNELS" --format=float32le \
        --file-format=wav "$recorded" &
    local rec=$!
    sleep 0.5                       # let the recording stream connect first
    paplay -d "$SINK" "$played"
    sleep 0.5                       # the sink's latency: the last samples are still on the way
    kill -INT "$rec" 2>/dev/null || true
    wait "$rec" 2>/dev/null || true

    local result=0
    "$python" - "$played" "$recorded" <<'EOF' || result=$?
"""Align the recording with the played file by FFT cross-correlation, then compare."""
import subprocess, sys
import numpy as np

def read(path):
    raw = subprocess.run(["sox", "-V1", path, "-t", "raw", "-e", "floating-point", "-b", "32",
                          "-L", "-"], check=True, stdout=subprocess.PIPE).stdout
    return np.frombuffer(raw, "<f4").astype(np.float64).reshape(-1, 2)

played, recorded = read(sys.argv[1]), read(sys.argv[2])
a, b = played[:, 0], recorded[:, 0]
n = 1 << (a.size + b.size).bit_length()
xc = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)
lag = int(np.argmax(xc[: b.size]))  # the recording starts first: search positive lags only
if lag + a.size > b.size:
    sys.exit(f"vmic selftest: FAIL: the recording ({b.size} samples) ends before the played "
             f"file ({a.size} samples, best match at {lag}): audio was lost or delayed")
seg = recorded[lag: lag + a.size]
ncc = [float(np.sum(played[:, c] * seg[:, c])
             / np.sqrt(np.sum(played[:, c] ** 2) * np.sum(seg[:, c] ** 2))) for c in (0, 1)]
gain = float(np.sum(seg[:, 0] * played[:, 0]) / np.sum(played[:, 0] ** 2))
ratio = float(np.sum(seg[:, 1] * seg[:, 0]) / np.sum(seg[:, 0] ** 2))
print(f"vmic selftest: played {a.size / 48000:.2f} s, recorded {b.size / 48000:.2f} s, "
      f"playback starts {lag / 48000 * 1000:.0f} ms into the recording")
print(f"vmic selftest: normalised cross-correlation left {ncc[0]:.6f} right {ncc[1]:.6f} "
      f"(1 - min = {1 - min(ncc):.1e}), gain {gain:.4f}, right/left {ratio:.4f}, "
      f"max |difference| {np.max(np.abs(seg - played)):.1e}")
ok = min(ncc) >= 0.99
print("vmic selftest: " + ("PASS" if ok else "FAIL (want >= 0.99)"))
sys.exit(0 if ok else 1)
EOF
    if [ -n "$started_here" ]; then
        stop_server quiet
        trap - EXIT
    fi
    return "$result"
}

case "$CMD" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    play) play "$@" ;;
    selftest) selftest "$@" ;;
    *) usage ;;
esac
