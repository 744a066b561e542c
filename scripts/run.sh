#!/usr/bin/env bash
# Build voxd and run it: scripts/run.sh [ARGS...]
#   default ARGS: transcribe ../shared/data/jfk.wav
# Runs from the repository root, so relative paths in ARGS are taken from there.
# Builds the release binary, makes sure the models are in models/ (`voxd models fetch`: quick
# when they are), then runs target/release/voxd ARGS.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if [ "$#" -eq 0 ]; then
    set -- transcribe ../shared/data/jfk.wav
fi

cargo build --release --bin voxd
VOXD="${CARGO_TARGET_DIR:-target}/release/voxd"
"$VOXD" models fetch --dest models tiny.en base >/dev/null
exec "$VOXD" "$@"
