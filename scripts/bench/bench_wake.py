#!/usr/bin/env python3
"""False activations per hour: `voxd run` on speech that is no command, wake phrase on and off.

The recordings: the real continuous reading (../shared/data/real/continuous/) and the chatter
of scripts/data/make_chatter.py (flite and espeak-ng voices, podcast-like, an hour in all; made
first with `scripts/data/make_chatter.py`). Each is read as fast as it goes (`voxd run --wav`,
so every utterance is recognised) against every example grammar (grammars/*.toml) with
tiny.en on 2 threads, once without a wake phrase and once with `[commands] wake` ("hey
computer" unless --wake says otherwise). The actions' programs are the examples' placeholders:
their runs fail to start, which changes nothing here.

An activation is an utterance the daemon acted on: an `intent` event, or a `wake` event (the
phrase heard, alone or before a command); an utterance with both counts once. The rate is
activations per hour of audio. Every activation is listed with its text.

Usage: scripts/bench/bench_wake.py [--chatter data/chatter] [--wake "hey computer"]
       [--model models/tiny.en] [--json FILE]. Run it with `nice -n 10` on a shared machine.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOXD = ROOT / "target" / "release" / "voxd"
GRAMMARS = sorted((ROOT / "grammars").glob("*.toml"))
CONTINUOUS = ROOT.parent / "shared" / "data" / "real" / "continuous" / "ljspeech_lj001.wav"


def config_text(model, wake):
    lines = [
        "[model]", f"path = {json.dumps(str(model))}", "threads = 2", "",
        "[commands]", "grammars = [" + ", ".join(json.dumps(str(g)) for g in GRAMMARS) + "]",
    ]
    if wake:
        lines.append(f"wake = {json.dumps(wake)}")
    lines += ["", "[actions]", "notifications = false", ""]
    return "\n".join(lines)


def run(wav, config):
    """The events of `voxd run` on wav, read as fast as it goes."""
    cmd = [str(VOXD), "run", "--config", str(config), "--wav", str(wav), "--stdout", "json",
           "--log", "error", "--no-watch"]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def activations(events):
    """(audio hours, utterances, [(start_ms, end_ms, what, text)]) of one run."""
    acted = {}
    hours, utterances = 0.0, 0
    for e in events:
        if e["event"] in ("intent", "wake"):
            key = (e["start_ms"], e["end_ms"])
            what = e["intent"] if e["event"] == "intent" else ("wake alone" if e["alone"]
                                                               else "wake")
            previous = acted.get(key)
            acted[key] = (what if previous is None else f"{previous} + {what}", e["text"])
        elif e["event"] == "stopped":
            hours, utterances = e["audio_ms"] / 3_600_000, e["utterances"]
    if hours == 0.0:
        raise SystemExit("voxd run ended without its `stopped` event (see its standard error)")
    return hours, utterances, [(k[0], k[1], w, t) for k, (w, t) in sorted(acted.items())]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chatter", default=str(ROOT / "data" / "chatter"),
                    help="the folder make_chatter.py wrote")
    ap.add_argument("--wake", default="hey computer")
    ap.add_argument("--model", default=str(ROOT / "models" / "tiny.en"))
    ap.add_argument("--json", help="also write every activation here")
    args = ap.parse_args()
    chatter = pathlib.Path(args.chatter)
    recordings = [CONTINUOUS] + sorted(chatter.glob("*.wav"))
    missing = [r for r in recordings if not r.exists()]
    if missing or len(recordings) < 2:
        sys.exit(f"missing recordings {missing or [str(chatter / '*.wav')]}: "
                 "run scripts/data/make_chatter.py")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, wake in (("wake off", None), ("wake on", args.wake)):
            config = pathlib.Path(tmp) / f"{label.replace(' ', '_')}.toml"
            config.write_text(config_text(args.model, wake))
            total_hours, total = 0.0, 0
            for wav in recordings:
                hours, utterances, acts = activations(run(wav, config))
                total_hours += hours
                total += len(acts)
                results.setdefault(label, {})[wav.name] = {"hours": hours,
                                                           "utterances": utterances,
                                                           "activations": acts}
                print(f"{label:8}  {wav.name:22} {hours * 60:6.1f} min  {utterances:4} "
                      f"utterances  {len(acts):3} "
                      f"activations  {len(acts) / hours:6.2f} / h", flush=True)
                for start, end, what, text in acts:
                    print(f"          {start / 1000:8.1f}-{end / 1000:.1f} s  {what}: {text}")
            rate = total / total_hours
            results[label]["total"] = {"hours": total_hours, "activations": total, "per_hour": rate}
            print(f"{label:8}  all {total_hours * 60:.1f} min: {total} activations, "
                  f"{rate:.2f} per hour\n", flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
