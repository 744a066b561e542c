#!/usr/bin/env bash
# Set up, build and run voxd:
#
#   scripts/run.sh            the demo: `voxd run` on examples/demo/session.wav (spoken
#                             commands and a sentence of speech, 20 s, at real time) with the
#                             repository's grammars, commands and captions at once: each
#                             command's intent and slots, what its action would do, and the
#                             captions, as text; it ends with the recording
#   scripts/run.sh ARGS...    target/release/voxd ARGS, e.g. `transcribe FILE.wav`,
#                             `doctor --config config.toml`, `run --config config.toml`
#
# First installs what is missing, as scripts/test.sh does (scripts/setup.sh: Debian packages,
# the Rust target and components, the release build, the models; a few seconds when all is
# there). Runs from the repository root, so relative paths in ARGS are taken from there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh
VOXD="${CARGO_TARGET_DIR:-target}/release/voxd"

if [ "$#" -gt 0 ]; then
    exec "$VOXD" "$@"
fi

# The grammars' programs (lightctl, playerctl, timerctl, ...) are placeholders for the user's
# own commands; the demo's stand-ins print what they were asked to do, and the demo config
# logs what an action prints.
export PATH="$PWD/examples/demo/bin:$PATH"
exec "$VOXD" run --config examples/demo/config.toml --no-watch --realtime \
    --wav examples/demo/session.wav
