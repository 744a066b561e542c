#!/usr/bin/env python3
"""Bytes of weights read per decoded token, per model format, and what they mean on a Raspberry Pi.

For each model file (default: tiny.en and base in every format under models/ and data/ggml/),
`voxd bench --json` times a decoding step here and says how many bytes of weight matrices a
step reads. A step reads all of the decoder's matrices and the token embedding once (the beams
share the read), so on a board whose memory bandwidth is the limit, bytes / bandwidth is the
shortest a step can take there.

The Pi figures are a PROJECTION, not a measurement: no Pi was at hand. They divide the measured
bytes by an assumed sustained read bandwidth for each board (--pi4-gbs, --pi5-gbs; measure yours
with a STREAM-like copy benchmark and pass it). Compute is left out, so they are lower bounds.

Usage: scripts/bench/pi_projection.py [--models PATH ...] [--threads 2] [--runs 5]
           [--pi4-gbs 4.0] [--pi5-gbs 9.0] [--markdown]
"""
import argparse
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))
from machine import describe  # noqa: E402

VOXD = ROOT / "target" / "release" / "voxd"
JFK = ROOT.parent / "shared" / "data" / "jfk.wav"
DEFAULT_MODELS = ["models/tiny.en", "data/ggml/ggml-tiny.en-q8_0.bin",
                  "data/ggml/ggml-tiny.en-q5_1.bin", "models/tiny.en-ct2-int8", "models/base",
                  "data/ggml/ggml-base-q8_0.bin", "data/ggml/ggml-base-q5_1.bin"]


def decoder_step(model, threads, runs, audio):
    out = subprocess.run(
        [str(VOXD), "bench", "--json", "--model", str(model), "--threads", str(threads),
         "--runs", str(runs), "--audio", str(audio)],
        check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        row = json.loads(line)
        if row["what"] == "decoder_token":
            return row
    raise SystemExit(f"pi_projection: voxd bench gave no decoder_token row for {model}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--audio", default=str(JFK))
    ap.add_argument("--pi4-gbs", type=float, default=4.0,
                    help="assumed sustained read bandwidth of a Pi 4, GB/s")
    ap.add_argument("--pi5-gbs", type=float, default=9.0,
                    help="assumed sustained read bandwidth of a Pi 5, GB/s")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if not VOXD.exists():
        raise SystemExit("pi_projection: build first: cargo build --release")
    header = ("model", "MiB read / token", "here: ms / token (best, median)", "here: GB/s",
              f"Pi 4 projection at {args.pi4_gbs:g} GB/s: ms ≥",
              f"Pi 5 projection at {args.pi5_gbs:g} GB/s: ms ≥")
    rows, kernels = [], None
    for model in args.models:
        path = ROOT / model
        if not path.exists():
            print(f"pi_projection: {model} is not installed; skipped", file=sys.stderr)
            continue
        step = decoder_step(path, args.threads, args.runs, args.audio)
        kernels = step.get("kernels")
        mb = step["weight_bytes"] / 1e6
        rows.append((path.name, f"{step['weight_bytes'] / 2**20:.1f}",
                     f"{step['best_ms']:.2f}, {step['median_ms']:.2f}",
                     f"{mb / step['median_ms']:.1f}",
                     f"{mb / args.pi4_gbs:.1f}", f"{mb / args.pi5_gbs:.1f}"))
    print(f"{describe(kernels)}; {args.threads} threads, {args.runs} runs")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in [header, *rows]:
            print("  ".join(f"{c:>14}" for c in r))


if __name__ == "__main__":
    main()
