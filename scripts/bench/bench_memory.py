#!/usr/bin/env python3
"""How much memory does `voxd run` hold, and does it stay flat over a long run?

Runs the daemon on a recording (by default the hour that `scripts/data/make_segmentation.py
--out data/hour --long 60` writes), delivered faster than real time or with --realtime as a
microphone would, once per --model. Samples its resident memory (VmRSS, from /proc) every
0.2 s and reports per model: the peak up to `ready` (loading and warm-up) and over the whole
run (the kernel's high-water mark VmHWM, which no sample can miss), the steady memory (the
median of the samples after `ready`), the memory after warm-up and at the end, and the
growth per hour of audio fitted over the second half of the run (where a leak would show as
a steady slope). Linux only (/proc).

Usage: scripts/bench/bench_memory.py [--wav FILE] [--mode commands|captions|both]
                               [--model models/tiny.en ...] [--threads 2] [--realtime]
                               [--markdown]
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def memory_kib(pid):
    """(VmRSS, VmHWM) of a running process in KiB, or None once it is gone."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    if len(found) < 2:
        return None
    return found["VmRSS"], found["VmHWM"]


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


def run_once(args, model, wav):
    """Runs the daemon on `wav` with `model`; the rows of its report."""
    voxd = ROOT / "target/release/voxd"
    cmd = [str(voxd), "run", "--config", str(ROOT / "config.toml"), "--mode", args.mode,
           "--model", model, "--threads", str(args.threads), "--wav", str(wav),
           "--stdout", "json", "--no-watch", "--log", "error"]
    if args.realtime:
        cmd.append("--realtime")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    # The daemon's own progress: the audio clock of its latest event, to put samples on
    # the audio timeline; and whether it is ready (loaded and warmed up).
    progress = {"audio_ms": 0, "events": 0, "stopped": None, "ready": False}

    def read_events():
        for line in proc.stdout:
            event = json.loads(line)
            progress["events"] += 1
            for key in ("end_ms", "start_ms"):
                if key in event:
                    progress["audio_ms"] = max(progress["audio_ms"], event[key])
                    break
            if event["event"] == "ready":
                progress["ready"] = True
            if event["event"] == "stopped":
                progress["stopped"] = event

    reader = threading.Thread(target=read_events, daemon=True)
    reader.start()
    samples = []  # (wall s, audio s, MiB, ready)
    load_peak = peak = 0.0
    while proc.poll() is None:
        ready = progress["ready"]
        kib = memory_kib(proc.pid)
        if kib is not None:
            rss, hwm = kib[0] / 1024.0, kib[1] / 1024.0
            samples.append((time.monotonic() - started, progress["audio_ms"] / 1000.0,
                            rss, ready))
            peak = max(peak, hwm)
            if not ready:
                load_peak = hwm
        time.sleep(0.2)
    reader.join(timeout=10)
    if proc.returncode != 0 or progress["stopped"] is None:
        sys.exit(f"bench_memory: voxd exited with {proc.returncode}")
    wall = time.monotonic() - started
    audio_s = progress["stopped"]["audio_ms"] / 1000.0
    running = [s for s in samples if s[3]]
    warm = [s for s in running if s[1] > 0] or running or samples
    steady = statistics.median(s[2] for s in (running or samples))
    half = [(a, m) for _, a, m, _ in warm if a >= audio_s / 2]
    return [
        ("audio", f"{audio_s / 60:.1f} min in {wall / 60:.1f} min "
                  f"({audio_s / wall:.1f}x real time)"),
        ("utterances", str(progress["stopped"]["utterances"])),
        ("events", str(progress["events"])),
        ("RSS peak at load and warm-up", f"{load_peak:.1f} MiB"),
        ("RSS peak", f"{peak:.1f} MiB"),
        ("RSS steady (median after ready)", f"{steady:.1f} MiB"),
        ("RSS after warm-up", f"{warm[0][2]:.1f} MiB"),
        ("RSS at the end", f"{samples[-1][2]:.1f} MiB"),
        ("growth over the second half", f"{slope_per_hour(half):+.2f} MiB per hour of audio"),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wav", default=str(ROOT / "data/hour/long_48k_stereo.wav"))
    ap.add_argument("--mode", default="both", choices=["commands", "captions", "both"])
    ap.add_argument("--model", action="append",
                    help="a model to run (repeat for several; default models/tiny.en)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--realtime", action="store_true",
                    help="deliver the recording at real time, as a microphone would")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    wav = pathlib.Path(args.wav)
    if not wav.exists():
        sys.exit(f"bench_memory: {wav} is missing; make it with "
                 "scripts/data/make_segmentation.py --out data/hour --long 60")
    models = args.model or [str(ROOT / "models/tiny.en")]
    pace = "real time" if args.realtime else "fast"
    for model in models:
        rows = run_once(args, model, wav)
        name = pathlib.Path(model).name
        if args.markdown:
            print(f"| {args.mode}, {name}, {args.threads} threads, {pace} | |")
            print("|---|---|")
            for k, v in rows:
                print(f"| {k} | {v} |")
            print()
        else:
            print(f"{name} ({args.mode}, {pace}):")
            for k, v in rows:
                print(f"{k:>32}: {v}")


if __name__ == "__main__":
    main()
