#!/usr/bin/env python3
"""Does `voxd run` keep its memory flat over a long run?

Runs the daemon on a long recording delivered faster than real time (by default the hour
that `scripts/data/make_segmentation.py --out data/hour --long 60` writes), samples its resident
memory (VmRSS, from /proc) every second, and reports the memory after warm-up, the peak,
the end, and the growth per hour of audio fitted over the second half of the run (where a
leak would show as a steady slope). Linux only (/proc).

Usage: scripts/bench/bench_memory.py [--wav FILE] [--mode commands|captions|both]
                               [--model models/tiny.en] [--threads 2] [--markdown]
"""
import argparse
import json
import pathlib
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def slope_per_hour(points):
    """Least-squares slope of (audio seconds, MiB) points, in MiB per hour of audio."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return 3600.0 * sxy / sxx if sxx else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wav", default=str(ROOT / "data/hour/long_48k_stereo.wav"))
    ap.add_argument("--mode", default="both", choices=["commands", "captions", "both"])
    ap.add_argument("--model", default=str(ROOT / "models/tiny.en"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    wav = pathlib.Path(args.wav)
    if not wav.exists():
        sys.exit(f"bench_memory: {wav} is missing; make it with "
                 "scripts/data/make_segmentation.py --out data/hour --long 60")
    voxd = ROOT / "target/release/voxd"
    cmd = [str(voxd), "run", "--config", str(ROOT / "config.toml"), "--mode", args.mode,
           "--model", args.model, "--threads", str(args.threads), "--wav", str(wav),
           "--stdout", "json", "--no-watch", "--log", "error"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    # The daemon's own progress: the audio clock of its latest event, to put samples on
    # the audio timeline.
    progress = {"audio_ms": 0, "events": 0, "stopped": None}

    def read_events():
        for line in proc.stdout:
            event = json.loads(line)
            progress["events"] += 1
            for key in ("end_ms", "start_ms"):
                if key in event:
                    progress["audio_ms"] = max(progress["audio_ms"], event[key])
                    break
            if event["event"] == "stopped":
                progress["stopped"] = event

    reader = threading.Thread(target=read_events, daemon=True)
    reader.start()
    samples = []  # (wall s, audio s, MiB)
    while proc.poll() is None:
        kib = rss_kib(proc.pid)
        if kib is not None:
            samples.append((time.monotonic() - started, progress["audio_ms"] / 1000.0,
                            kib / 1024.0))
        time.sleep(1.0)
    reader.join(timeout=10)
    if proc.returncode != 0 or progress["stopped"] is None:
        sys.exit(f"bench_memory: voxd exited with {proc.returncode}")
    wall = time.monotonic() - started
    audio_s = progress["stopped"]["audio_ms"] / 1000.0
    warm = [s for s in samples if s[1] > 0]
    after_warmup = warm[0][2] if warm else samples[0][2]
    half = [(a, m) for _, a, m in warm if a >= audio_s / 2]
    rows = [
        ("audio", f"{audio_s / 60:.1f} min in {wall / 60:.1f} min "
                  f"({audio_s / wall:.1f}x real time)"),
        ("utterances", str(progress["stopped"]["utterances"])),
        ("events", str(progress["events"])),
        ("RSS after warm-up", f"{after_warmup:.1f} MiB"),
        ("RSS peak", f"{max(s[2] for s in samples):.1f} MiB"),
        ("RSS at the end", f"{samples[-1][2]:.1f} MiB"),
        ("growth over the second half", f"{slope_per_hour(half):+.2f} MiB per hour of audio"),
    ]
    if args.markdown:
        print(f"| {args.mode}, {pathlib.Path(args.model).name}, {args.threads} threads | |")
        print("|---|---|")
        for k, v in rows:
            print(f"| {k} | {v} |")
    else:
        for k, v in rows:
            print(f"{k:>30}: {v}")


if __name__ == "__main__":
    main()
