#!/usr/bin/env bash
# Build voxd and run it: scripts/run.sh [ARGS...]
#   default ARGS: transcribe ../shared/data/jfk.wav
# Runs from the repository root, so relative paths in ARGS are taken from there.
# Makes sure the models are installed (scripts/fetch_models.py: quick when they are), builds the
# release binary, then runs target/release/voxd ARGS.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if [ "$#" -eq 0 ]; then
    set -- transcribe ../shared/data/jfk.wav
fi

python3 scripts/fetch_models.py tiny.en base
cargo build --release --bin voxd
exec target/release/voxd "$@"
