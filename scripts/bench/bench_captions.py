#!/usr/bin/env python3
"""How soon do live captions become final, and what do they cost?

Plays a captions recording (scripts/data/make_captions.py; data/captions/long.wav by default,
made with `--minutes 3`) to `voxd run --mode captions --wav FILE --realtime`, so audio
arrives as a microphone would deliver it and the audio clock runs with the wall clock from
`ready` on. For every word of every `final` event it takes the word's end on the audio clock
(the final's span shared among its words by characters) and reports how long after it the
word became final (`clock_ms` of the event minus that end): p50 and p95. Also: the word
error rate of the finals against the offline transcription of the same file with the same
model (`voxd transcribe`) and against the spoken text (the manifest), how many partials were
shown, and the CPU time the daemon used per second of audio.

Usage: scripts/bench/bench_captions.py [--wav data/captions/long.wav] [--models tiny.en base]
                                 [--threads 2]
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def words(text):
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()


def word_errors(reference, hypothesis):
    r, h = words(reference), words(hypothesis)
    row = list(range(len(h) + 1))
    for i, rw in enumerate(r):
        diagonal, row[0] = row[0], i + 1
        for j, hw in enumerate(h):
            diagonal, row[j + 1] = row[j + 1], min(diagonal + (rw != hw), row[j] + 1,
                                                   row[j + 1] + 1)
    return row[-1], len(r)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def spoken_text(wav):
    manifest = json.loads((wav.parent / "manifest.json").read_text())
    for entry in manifest["files"].values():
        if entry["file"] == wav.name:
            return " ".join(p["text"] for p in entry["pieces"])
    sys.exit(f"bench_captions: {wav.name} is not in {wav.parent / 'manifest.json'}")


VOXD = ROOT / "target/release/voxd"


def offline_text(model, wav, threads):
    """The offline transcription of the whole file, as `voxd transcribe --json` writes it."""
    out = subprocess.run([str(VOXD), "transcribe", "--json", "--log", "error", "--language", "en",
                          "--threads", str(threads), "--model", str(model), str(wav)],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return next(json.loads(line)["text"] for line in out.splitlines()
                if json.loads(line)["type"] == "transcript")


def run(model, wav, threads):
    voxd = VOXD
    cmd = [str(voxd), "run", "--config", "/dev/null", "--mode", "captions", "--stdout", "json",
           "--log", "error", "--no-watch", "--threads", str(threads), "--model", str(model),
           "--wav", str(wav), "--realtime"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    lines = proc.stdout.read().splitlines()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"bench_captions: voxd exited with status {status}")
    events = [json.loads(line) for line in lines]
    finals = [e for e in events if e["event"] == "final"]
    latencies = []
    for f in finals:
        pieces = f["text"].split()
        total = sum(len(w) for w in pieces) or 1
        done = 0
        for w in pieces:
            done += len(w)
            word_end = f["start_ms"] + (f["end_ms"] - f["start_ms"]) * done / total
            latencies.append(f["clock_ms"] - word_end)
    audio_ms = events[-1]["audio_ms"]
    return {
        "text": " ".join(f["text"] for f in finals),
        "latencies": latencies,
        "partials": sum(1 for e in events if e["event"] == "partial"),
        "cpu": (usage.ru_utime + usage.ru_stime) / (audio_ms / 1000.0),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wav", default=str(ROOT / "data/captions/long.wav"))
    ap.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    wav = pathlib.Path(args.wav)
    if not wav.exists():
        sys.exit(f"bench_captions: {wav} is missing; make it with scripts/data/make_captions.py")
    spoken = spoken_text(wav)
    print(f"{wav.name}: {len(words(spoken))} words spoken")
    print("| model | words final after, p50 / p95 | WER vs offline | WER vs spoken (offline) "
          "| partials | CPU per second of audio |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        model = ROOT / "models" / name
        offline = offline_text(model, wav, args.threads)
        r = run(model, wav, args.threads)
        agree, n_offline = word_errors(offline, r["text"])
        errors, n = word_errors(spoken, r["text"])
        offline_errors, _ = word_errors(spoken, offline)
        lat = r["latencies"]
        print(f"| {name} | {percentile(lat, 50) / 1000:.2f} / {percentile(lat, 95) / 1000:.2f} s "
              f"| {100 * agree / n_offline:.1f} % ({agree} of {n_offline}) "
              f"| {100 * errors / n:.1f} % ({100 * offline_errors / n:.1f} %) "
              f"| {r['partials']} | {100 * r['cpu']:.0f} % of a core |", flush=True)


if __name__ == "__main__":
    main()
