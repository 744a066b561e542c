#!/usr/bin/env python3
"""Command accuracy benchmark: `voxd recognize` over data/commands/ (scripts/data/make_commands.py).

For each model (default tiny.en and base, 2 threads, release build) prints:
  acceptance   commands recognised with the right intent and every slot right, per SNR and
               on average
  false accept negatives (not commands) given an intent, in %, with the categories
  time         recognition time of the 2-3 s commands (median, p95), as voxd measures it
               (audio in memory to result; model loading excluded)

--json FILE also writes every result line; --max-gap passes a rejection threshold through.
"""
import argparse
from collections import Counter
import json
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "commands"
VOXD = ROOT / "target" / "release" / "voxd"
GRAMMARS = sorted((ROOT / "grammars").glob("*.toml"))


def run(model, threads, files, extra):
    cmd = [str(VOXD), "recognize", "--model", str(model), "--threads", str(threads),
           "--grammar", *map(str, GRAMMARS), *extra, "--", *map(str, files)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return {pathlib.Path(r["file"]).name: r for r in map(json.loads, out.splitlines())}


def same_slots(expected, got):
    return {k: str(v) for k, v in expected.items()} == {k: str(v) for k, v in got.items()}


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def report(name, clips, results):
    commands = [c for c in clips if c["kind"] == "command"]
    negatives = [c for c in clips if c["kind"] == "negative"]
    right = {c["file"]: results[c["file"]]["intent"] == c["intent"]
             and same_slots(c["slots"], results[c["file"]]["slots"]) for c in commands}
    print(f"\n{name}")
    rates = []
    for snr in sorted({c["snr_db"] for c in commands}, reverse=True):
        group = [c for c in commands if c["snr_db"] == snr]
        rate = 100.0 * sum(right[c["file"]] for c in group) / len(group)
        rates.append(rate)
        print(f"  acceptance at {snr:>2} dB SNR  {rate:5.1f} %  ({len(group)} commands)")
    print(f"  acceptance, average     {statistics.mean(rates):5.1f} %")
    wrong = [c for c in commands if not right[c["file"]] and results[c["file"]]["intent"]]
    print(f"  commands taken as another command or wrong slots: {len(wrong)}")
    refused = Counter(results[c["file"]]["reason"] for c in commands
                      if not results[c["file"]]["intent"])
    print("  commands refused, by reason: "
          + (", ".join(f"{k} {v}" for k, v in refused.most_common()) or "none"))
    accepted = [c for c in negatives if results[c["file"]]["intent"]]
    print(f"  false accepts           {100.0 * len(accepted) / len(negatives):5.1f} %  "
          f"({len(accepted)} of {len(negatives)} negatives)")
    for c in accepted:
        r = results[c["file"]]
        print(f"    {c['file']} ({c['category']}, {c.get('text', '')!r}) -> {r['intent']} "
              f"{r['text']!r} gap {r['gap']:.2f}")
    times = [results[c["file"]]["ms"] for c in commands if 2.0 <= c["duration_s"] <= 3.0]
    print(f"  time, 2-3 s commands    median {statistics.median(times):.0f} ms, "
          f"p95 {percentile(times, 0.95):.0f} ms  ({len(times)} commands)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="model paths (default tiny.en, base)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-gap", type=float)
    ap.add_argument("--json", type=pathlib.Path, help="write every result line here")
    args = ap.parse_args()
    manifest = DATA / "manifest.json"
    if not manifest.exists():
        sys.exit("bench_commands: run scripts/data/make_commands.py first")
    if not VOXD.exists():
        sys.exit(f"bench_commands: {VOXD} missing; run `cargo build --release` first")
    clips = json.loads(manifest.read_text())["clips"]
    extra = [] if args.max_gap is None else ["--max-gap", str(args.max_gap)]
    models = args.model or [str(ROOT / "models" / "tiny.en"), str(ROOT / "models" / "base")]
    dump = []
    print(f"{sum(c['kind'] == 'command' for c in clips)} commands, "
          f"{sum(c['kind'] == 'negative' for c in clips)} negatives, "
          f"{args.threads} threads")
    for model in models:
        results = run(model, args.threads, [DATA / c["file"] for c in clips], extra)
        report(pathlib.Path(model).name, clips, results)
        dump += [{"model": pathlib.Path(model).name, **r} for r in results.values()]
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in dump))


if __name__ == "__main__":
    main()
