#!/usr/bin/env python3
"""Command accuracy benchmark: `voxd recognize` on synthetic and real commands and non-commands.

Sets (each run with 2 threads, release build, per model; default tiny.en and base):
  synthetic   data/commands/ (scripts/data/make_commands.py; --data): espeak-ng commands in
              noise at 24-6 dB and negatives, against grammars/*.toml
  real        the real recordings' commands (REAL/commands, --real; expected intents and
              slots in tests/fixtures/real_commands/expected.tsv), against grammars/*.toml
              plus the recordings' names (tests/fixtures/real_commands/names.toml); those the
              table marks `-` are real non-commands
  continuous  every utterance the segmenter (`voxd listen`) cuts from REAL/continuous/*.wav,
              real speech that is no command, against grammars/*.toml

Recognition runs once with --max-mismatch 1 (so every utterance that passes the other checks
keeps the sentence the grammar reads), then the threshold on a word's mismatch is swept
offline: acceptance (intent and every slot right) and false accepts per set and model, for
each threshold. Prints the table at --threshold (the default of `[commands] max_mismatch`)
with the reasons of the refusals and every false accept and miss of the real sets;
--plot FILE draws the curves (matplotlib); --json FILE writes every result line, and
--results FILE reads such a file instead of running voxd (to read or draw it again).
"""
import argparse
from collections import Counter
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "commands"
REAL = ROOT.parent / "shared" / "data" / "real"
FIXTURE = ROOT / "tests" / "fixtures" / "real_commands"
VOXD = ROOT / "target" / "release" / "voxd"
GRAMMARS = sorted((ROOT / "grammars").glob("*.toml"))
THRESHOLDS = [i / 100 for i in range(101)]


def run(model, threads, files, grammars, beam=None):
    cmd = [str(VOXD), "recognize", "--config", "/dev/null", "--model", str(model),
           "--threads", str(threads), "--max-mismatch", "1", "--grammar", *map(str, grammars)]
    if beam is not None:
        cmd += ["--beam", str(beam)]
    cmd += ["--", *map(str, files)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return {r["file"]: r for r in map(json.loads, out.splitlines())}


def same_slots(expected, got):
    return {k: str(v) for k, v in expected.items()} == {k: str(v) for k, v in got.items()}


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def taken(result, threshold):
    return result["intent"] is not None and result["mismatch"] <= threshold


def reason(result, threshold):
    """Why refused at `threshold` (None when taken)."""
    if taken(result, threshold):
        return None
    return result["reason"] or "word_not_in_grammar (mismatch)"


def synthetic_clips(data):
    manifest = data / "manifest.json"
    if not manifest.exists():
        sys.exit(f"bench_commands: no {manifest}: run scripts/data/make_commands.py first")
    clips = json.loads(manifest.read_text())["clips"]
    return [{**c, "path": data / c["file"]} for c in clips]


def real_clips(real):
    clips = []
    for line in (FIXTURE / "expected.tsv").read_text().splitlines():
        if line.startswith("#") or line.startswith("file\t"):
            continue
        file, intent, slots = line.split("\t")
        clip = {"file": file, "path": real / "commands" / file, "category": "real"}
        if intent == "-":
            clips.append({**clip, "kind": "negative"})
        else:
            clips.append({**clip, "kind": "command", "intent": intent,
                          "slots": json.loads(slots), "snr_db": "real"})
    return clips


def continuous_clips(real, out):
    for wav in sorted((real / "continuous").glob("*.wav")):
        folder = out / wav.stem
        subprocess.run([str(VOXD), "listen", "--config", "/dev/null", "--wav", str(wav),
                        "--save-utterances", str(folder)], check=True,
                       stdout=subprocess.DEVNULL)
    return [{"file": f"{p.parent.name}/{p.name}", "path": p, "kind": "negative",
             "category": "continuous"} for p in sorted(out.glob("*/*.wav"))]


def result_of(clip, by_path):
    """The result for `clip`; saved continuous utterances were cut into another folder."""
    found = by_path.get(str(clip["path"]))
    if found is None:
        found = next(r for path, r in by_path.items() if path.endswith("/" + clip["file"]))
    return found


def measure(clips, results, threshold):
    """Acceptance (mean over SNR groups) and false accepts, in %."""
    commands = [c for c in clips if c["kind"] == "command"]
    negatives = [c for c in clips if c["kind"] == "negative"]
    rates = []
    for group in sorted({str(c["snr_db"]) for c in commands}):
        members = [c for c in commands if str(c["snr_db"]) == group]
        rates.append(100.0 * sum(right(c, results[c["file"]], threshold)
                                 for c in members) / len(members))
    accept = statistics.mean(rates) if rates else float("nan")
    false = (100.0 * sum(taken(results[c["file"]], threshold) for c in negatives)
             / len(negatives)) if negatives else float("nan")
    return accept, false


def right(clip, result, threshold):
    return (taken(result, threshold) and result["intent"] == clip["intent"]
            and same_slots(clip["slots"], result["slots"]))


def report(name, sets, threshold):
    print(f"\n{name} (threshold {threshold})")
    for set_name, (clips, results) in sets.items():
        commands = [c for c in clips if c["kind"] == "command"]
        negatives = [c for c in clips if c["kind"] == "negative"]
        if commands:
            for snr in sorted({c["snr_db"] for c in commands}, key=str, reverse=True):
                group = [c for c in commands if c["snr_db"] == snr]
                n = sum(right(c, results[c["file"]], threshold) for c in group)
                label = f"{snr} dB" if isinstance(snr, int) else snr
                print(f"  {set_name:<10} acceptance {label:>6}  {100.0 * n / len(group):5.1f} %  "
                      f"({n} of {len(group)})")
            refused = Counter(reason(results[c["file"]], threshold) for c in commands
                              if not taken(results[c["file"]], threshold))
            print(f"  {set_name:<10} refused by reason: "
                  + (", ".join(f"{k} {v}" for k, v in refused.most_common()) or "none"))
            wrong = [c for c in commands if taken(results[c["file"]], threshold)
                     and not right(c, results[c["file"]], threshold)]
            print(f"  {set_name:<10} taken as another command or wrong slots: {len(wrong)}")
            if set_name == "real":
                for c in commands:
                    r = results[c["file"]]
                    if not right(c, r, threshold):
                        print(f"    miss {c['file']}: {reason(r, threshold) or 'wrong'} "
                              f"{r['text']!r} (free {r['free_text']!r}, "
                              f"mismatch {r['mismatch']:.2f})")
            times = [results[c["file"]]["ms"] for c in commands]
            print(f"  {set_name:<10} time per command  median {statistics.median(times):.0f} ms, "
                  f"p95 {percentile(times, 0.95):.0f} ms")
        if negatives:
            accepted = [c for c in negatives if taken(results[c["file"]], threshold)]
            print(f"  {set_name:<10} false accepts  {100.0 * len(accepted) / len(negatives):5.1f} %"
                  f"  ({len(accepted)} of {len(negatives)})")
            for c in accepted:
                r = results[c["file"]]
                print(f"    {c['file']} ({c['category']}, {c.get('text', '')!r}) -> {r['intent']} "
                      f"{r['text']!r} (free {r['free_text']!r}, mismatch {r['mismatch']:.2f})")


def plot(path, curves, threshold):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right_) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {}
    for (model, set_name, what), values in sorted(curves.items()):
        colour = colours.setdefault(model, f"C{len(colours)}")
        style = "-" if set_name != "synthetic" else "--"
        axis = left if what == "accept" else right_
        label = f"{model}, {set_name}"
        axis.plot(THRESHOLDS, values, style, color=colour, label=label)
    for axis, title in [(left, "commands accepted with intent and slots (%)"),
                        (right_, "non-commands accepted (%)")]:
        axis.axvline(threshold, color="grey", linewidth=0.8)
        axis.set_xlabel("share of the sentence's letters that may differ (max_mismatch)")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    left.set_ylim(40, 101)
    right_.set_ylim(-0.5, 15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="model paths (default tiny.en, base)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam", type=int, help="beam width (default: voxd's)")
    ap.add_argument("--data", type=pathlib.Path, default=DATA, help=f"default {DATA}")
    ap.add_argument("--real", type=pathlib.Path, default=REAL, help=f"default {REAL}")
    ap.add_argument("--threshold", type=float, default=0.45,
                    help="where the table is read (default: [commands] max_mismatch's)")
    ap.add_argument("--plot", type=pathlib.Path, help="draw the curves into this PNG")
    ap.add_argument("--json", type=pathlib.Path, help="write every result line here")
    ap.add_argument("--results", type=pathlib.Path, help="read the results of an earlier --json")
    args = ap.parse_args()
    saved = ([json.loads(line) for line in args.results.read_text().splitlines()]
             if args.results else None)
    if not VOXD.exists():
        sys.exit(f"bench_commands: {VOXD} missing; run `cargo build --release` first")
    models = args.model or [str(ROOT / "models" / "tiny.en"), str(ROOT / "models" / "base")]
    names = GRAMMARS + [FIXTURE / "names.toml"]
    synthetic = synthetic_clips(args.data)
    real = real_clips(args.real)
    curves, dump = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        continuous = continuous_clips(args.real, pathlib.Path(tmp))
        print(f"synthetic: {sum(c['kind'] == 'command' for c in synthetic)} commands, "
              f"{sum(c['kind'] == 'negative' for c in synthetic)} negatives; real: "
              f"{sum(c['kind'] == 'command' for c in real)} commands, "
              f"{sum(c['kind'] == 'negative' for c in real)} non-commands; continuous: "
              f"{len(continuous)} utterances; {args.threads} threads")
        for model in models:
            name = pathlib.Path(model).name
            sets = {}
            for set_name, clips, grammars in [("synthetic", synthetic, GRAMMARS),
                                              ("real", real, names),
                                              ("continuous", continuous, GRAMMARS)]:
                if saved is None:
                    by_path = run(model, args.threads, [c["path"] for c in clips], grammars,
                                  args.beam)
                else:
                    by_path = {r["file"]: r for r in saved
                               if r["model"] == name and r["set"] == set_name}
                results = {c["file"]: result_of(c, by_path) for c in clips}
                sets[set_name] = (clips, results)
                dump += [{"model": name, "set": set_name, **r} for r in results.values()]
            report(name, sets, args.threshold)
            for t_index, t in enumerate(THRESHOLDS):
                for set_name, (clips, results) in sets.items():
                    accept, false = measure(clips, results, t)
                    if set_name == "real" or set_name == "synthetic":
                        curves.setdefault((name, set_name, "accept"), []).append(accept)
                    if set_name != "real":
                        curves.setdefault((name, set_name, "false"), []).append(false)
                # The real non-commands: the continuous utterances and the short recordings.
                negatives = [(c, sets[s][1]) for s in ("real", "continuous")
                             for c in sets[s][0] if c["kind"] == "negative"]
                false = 100.0 * sum(taken(r[c["file"]], t) for c, r in negatives) / len(negatives)
                curves.setdefault((name, "real", "false"), []).append(false)
            print(f"  sweep (threshold: real acceptance / synthetic acceptance / real false "
                  f"accepts / synthetic false accepts, %):")
            for t_index in range(0, len(THRESHOLDS), 5):
                row = [curves[(name, "real", "accept")][t_index],
                       curves[(name, "synthetic", "accept")][t_index],
                       curves[(name, "real", "false")][t_index],
                       curves[(name, "synthetic", "false")][t_index]]
                print(f"    {THRESHOLDS[t_index]:.2f}  " + "  ".join(f"{v:5.1f}" for v in row))
    # The continuous false-accept curve is part of "real"; drop its separate line.
    curves = {k: v for k, v in curves.items() if k[1] != "continuous"}
    if args.plot:
        plot(args.plot, curves, args.threshold)
    if args.json:
        args.json.write_text("".join(json.dumps(r, default=str) + "\n" for r in dump))


if __name__ == "__main__":
    main()
