#!/usr/bin/env python3
"""Soak: hours of audio through `voxd run` faster than real time, memory and descriptors sampled.

Feeds the daemon raw PCM on standard input as fast as it takes it: a room that is quiet most of
the time (a faint noise floor), with now and then a real spoken command, a real sentence of
continuous speech (no command: with `answer_unmatched` the reply model answers it) or a
synthetic command. Commands and captions run at once (`--mode both`), replies are on, and the
grammars' programs are the demo's stand-ins (examples/demo/bin), so actions really run.

Every few seconds of wall time it samples the daemon's resident memory (VmRSS), its open file
descriptors (/proc/PID/fd) and its threads, against the audio clock. At the end it prints the
figures (after warm-up, peak, end, growth per hour of audio over the second half) and draws
them as a PNG. Linux only (/proc).

Usage: scripts/bench/soak.py [--hours 24] [--model models/tiny.en] [--threads 2]
                             [--png docs/soak.png] [--csv data/soak/samples.csv]

Needs the models (scripts/setup.sh) and matplotlib (scripts/setup.sh --reference); run it
with .venv/bin/python.
"""
import argparse
import json
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import threading
import time
import wave

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "real"
RATE = 16000


def read_wav_16k(path):
    """A 16 kHz mono 16-bit WAV as int16 samples (the recordings used here are all that)."""
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
            sys.exit(f"soak: {path} is not 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def speech_pieces():
    """(kind, samples) of every recording the soak plays: real commands, real continuous
    speech cut at its sentences, synthetic commands when they have been made."""
    pieces = []
    for path in sorted((SHARED / "commands").glob("*.wav")):
        pieces.append(("command", read_wav_16k(path)))
    continuous = read_wav_16k(SHARED / "continuous" / "ljspeech_lj001.wav")
    tsv = (SHARED / "continuous.tsv").read_text().splitlines()
    header = tsv[0].split("\t")
    for line in tsv[1:]:
        row = dict(zip(header, line.split("\t")))
        start, end = float(row["start"]), float(row["end"])
        pieces.append(("speech", continuous[int(start * RATE):int(end * RATE)]))
    clips = ROOT / "data" / "daemon" / "clips"
    for path in sorted(clips.glob("*.wav")) if clips.is_dir() else []:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2):
                pieces.append(("synthetic", read_wav_16k(path)))
    if not pieces:
        sys.exit(f"soak: no recordings found under {SHARED}")
    return pieces


def audio_stream(hours, seed, gap_s):
    """Yields int16 chunks: quiet noise with a recording every `gap_s` seconds on average,
    until `hours` of audio have been produced."""
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    pieces = speech_pieces()
    total = int(hours * 3600 * RATE)
    produced = 0
    while produced < total:
        silence = int(rng.uniform(0.5, 1.5) * gap_s * RATE)
        floor = (noise.standard_normal(silence) * 20).astype(np.int16)  # about -64 dBFS
        _, speech = rng.choice(pieces)
        for chunk in (floor, speech):
            chunk = chunk[: total - produced]
            produced += len(chunk)
            yield chunk


def status_fields(pid):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.split()
    except FileNotFoundError:
        return None
    return fields


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError:
        return None


def slope_per_hour(points):
    """Least-squares slope of (audio seconds, value) points, per hour of audio."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return 3600.0 * sxy / sxx if sxx else 0.0


def soak_config(directory, args):
    """The demo's settings plus replies to unmatched speech, written beside the run."""
    demo = (ROOT / "examples/demo/config.toml").read_text()
    demo = demo.replace('"../../', f'"{ROOT}/')
    demo = demo.replace('stdout = "text"', 'stdout = "json"')
    demo = demo.replace('log = "warn,voxd::actions::output=info"', 'log = "error"')
    llm = (f'\n[llm]\nenabled = true\nmodel = "{ROOT}/models/smollm2/model.gguf"\n'
           f'answer_unmatched = true\nmax_tokens = {args.reply_tokens}\nseed = 1\n'
           f'load = "start"\n')
    path = pathlib.Path(directory) / "config.toml"
    path.write_text(demo + llm)
    return path


def plot(samples, png, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [s["audio_s"] / 3600 for s in samples]
    fig, (ax_rss, ax_fd) = plt.subplots(2, 1, sharex=True, figsize=(8, 5.5))
    ax_rss.plot(hours, [s["rss_mib"] for s in samples], color="tab:blue")
    ax_rss.set_ylabel("resident memory (MiB)")
    ax_rss.set_ylim(bottom=0)
    ax_fd.plot(hours, [s["fds"] for s in samples], color="tab:orange", label="open fds")
    ax_fd.plot(hours, [s["threads"] for s in samples], color="tab:green", label="threads")
    ax_fd.set_ylabel("count")
    ax_fd.set_ylim(bottom=0)
    ax_fd.legend(loc="lower right")
    ax_fd.set_xlabel("hours of audio")
    fig.suptitle(title)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0, help="hours of audio (default 24)")
    ap.add_argument("--gap", type=float, default=40.0,
                    help="mean seconds of quiet between recordings (default 40)")
    ap.add_argument("--model", default=str(ROOT / "models/tiny.en"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reply-tokens", type=int, default=32,
                    help="the replies' max_tokens (default 32)")
    ap.add_argument("--every", type=float, default=5.0, help="wall seconds between samples")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--png", default=str(ROOT / "docs/soak.png"))
    ap.add_argument("--csv", default=str(ROOT / "data/soak/samples.csv"))
    args = ap.parse_args()
    if args.hours <= 0 or args.gap <= 0 or args.every <= 0:
        sys.exit("soak: --hours, --gap and --every must be above 0")
    voxd = ROOT / "target/release/voxd"
    if not voxd.exists():
        sys.exit(f"soak: {voxd} is missing; build it with scripts/setup.sh")

    with tempfile.TemporaryDirectory(prefix="voxd-soak-") as tmp:
        config = soak_config(tmp, args)
        env = dict(os.environ, PATH=f"{ROOT}/examples/demo/bin:{os.environ['PATH']}")
        cmd = [str(voxd), "run", "--config", str(config), "--model", args.model,
               "--threads", str(args.threads), "--stdin", "--rate", str(RATE),
               "--channels", "1", "--no-watch"]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=env, cwd=ROOT, text=False)
        # The audio clock of the samples: what the daemon has taken from the pipe so far
        # (its events are too sparse for a clock in a quiet room).
        progress = {"fed_s": 0.0, "events": {}, "stopped": None}

        def feed():
            try:
                for chunk in audio_stream(args.hours, args.seed, args.gap):
                    proc.stdin.write(chunk.tobytes())
                    progress["fed_s"] += len(chunk) / RATE
            except BrokenPipeError:
                return
            proc.stdin.close()

        def read_events():
            for line in proc.stdout:
                event = json.loads(line)
                kind = event["event"]
                progress["events"][kind] = progress["events"].get(kind, 0) + 1
                if kind == "stopped":
                    progress["stopped"] = event

        threads = [threading.Thread(target=feed, daemon=True),
                   threading.Thread(target=read_events, daemon=True)]
        for t in threads:
            t.start()
        samples = []
        last_report = 0.0
        while proc.poll() is None:
            status, fds = status_fields(proc.pid), open_fds(proc.pid)
            if status and fds is not None and "VmRSS" in status:
                samples.append({"wall_s": time.monotonic() - started,
                                "audio_s": progress["fed_s"],
                                "rss_mib": int(status["VmRSS"][0]) / 1024.0,
                                "fds": fds, "threads": int(status["Threads"][0])})
            now = time.monotonic() - started
            if now - last_report >= 60 and samples:
                last_report = now
                s = samples[-1]
                print(f"soak: {s['audio_s'] / 3600:.2f} of {args.hours} h of audio after "
                      f"{now / 60:.0f} min: RSS {s['rss_mib']:.1f} MiB, {s['fds']} fds, "
                      f"{s['threads']} threads", file=sys.stderr, flush=True)
            time.sleep(args.every)
        for t in threads:
            t.join(timeout=10)

    if proc.returncode != 0 or progress["stopped"] is None:
        sys.exit(f"soak: voxd exited with {proc.returncode}")
    wall = time.monotonic() - started
    audio_s = progress["stopped"]["audio_ms"] / 1000.0
    warm = [s for s in samples if s["audio_s"] > 0] or samples
    half = [s for s in warm if s["audio_s"] >= audio_s / 2]
    csv = pathlib.Path(args.csv)
    csv.parent.mkdir(parents=True, exist_ok=True)
    with open(csv, "w") as f:
        f.write("wall_s,audio_s,rss_mib,fds,threads\n")
        for s in samples:
            f.write(f"{s['wall_s']:.1f},{s['audio_s']:.1f},{s['rss_mib']:.1f},"
                    f"{s['fds']},{s['threads']}\n")
    model = pathlib.Path(args.model).name
    title = (f"voxd run, {audio_s / 3600:.1f} h of audio in {wall / 3600:.2f} h: "
             f"{model}, commands + captions + replies")
    plot(samples, pathlib.Path(args.png), title)
    events = ", ".join(f"{k} {v}" for k, v in sorted(progress["events"].items()))
    rows = [
        ("audio", f"{audio_s / 3600:.2f} h in {wall / 3600:.2f} h "
                  f"({audio_s / wall:.1f}x real time)"),
        ("events", events),
        ("RSS after warm-up / peak / end",
         f"{warm[0]['rss_mib']:.1f} / {max(s['rss_mib'] for s in samples):.1f} / "
         f"{samples[-1]['rss_mib']:.1f} MiB"),
        ("RSS growth, second half", f"{slope_per_hour([(s['audio_s'], s['rss_mib']) for s in half]):+.2f} MiB per hour of audio"),
        ("open fds min / max / end",
         f"{min(s['fds'] for s in samples)} / {max(s['fds'] for s in samples)} / "
         f"{samples[-1]['fds']}"),
        ("threads min / max / end",
         f"{min(s['threads'] for s in samples)} / {max(s['threads'] for s in samples)} / "
         f"{samples[-1]['threads']}"),
        ("samples", f"{len(samples)} ({csv}); plot {args.png}"),
    ]
    for k, v in rows:
        print(f"{k:>32}: {v}")


if __name__ == "__main__":
    main()
