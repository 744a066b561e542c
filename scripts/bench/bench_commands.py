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

Recognition runs once with --max-mismatch 1 and no limit on the likelihood ratio (so every
utterance that passes the other checks keeps the sentence the grammar reads, with what the
letters alone decided, `by_letters`, and its `ratio`), then the rule is applied offline: a
sentence is taken when the letters accept it at --max-mismatch, or when its ratio is at
most the ratio limit, which is swept: acceptance (intent and every slot right) and false
accepts per set and model, for each limit, and for the letters alone. Prints the table at
--max-ratio (the default of `[commands] max_ratio`) with the reasons of the refusals and
every false accept and miss of the real sets; --plot FILE draws the curves (matplotlib);
--json FILE writes every result line, and --results FILE reads such a file instead of
running voxd (to read or draw it again).
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
# The swept limits on the log-likelihood ratio, nats.
RATIOS = [i / 4 for i in range(-4, 41)]
# Large enough that no sentence is refused by its likelihood ratio: the sweep decides.
NO_RATIO_LIMIT = 1000
# `[commands] max_ratio`'s default.
MAX_RATIO = 4.5


def run(model, threads, files, grammars, beam=None):
    cmd = [str(VOXD), "recognize", "--config", "/dev/null", "--model", str(model),
           "--threads", str(threads), "--max-mismatch", "1", "--max-ratio", str(NO_RATIO_LIMIT),
           "--grammar", *map(str, grammars)]
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


def taken(result, rule):
    """Whether voxd would take `result` with `rule` = (max_mismatch, max_ratio or None for
    the letters alone)."""
    max_mismatch, max_ratio = rule
    if result["intent"] is None:
        return False
    letters = result["by_letters"] is None and result["mismatch"] <= max_mismatch
    ratio = result.get("ratio")
    return letters or (max_ratio is not None and ratio is not None and ratio <= max_ratio)


def reason(result, rule):
    """Why refused with `rule` (None when taken)."""
    if taken(result, rule):
        return None
    return result["reason"] or result["by_letters"] or "not_in_grammar (mismatch)"


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


def measure(clips, results, rule):
    """Acceptance (mean over SNR groups) and false accepts, in %."""
    commands = [c for c in clips if c["kind"] == "command"]
    negatives = [c for c in clips if c["kind"] == "negative"]
    rates = []
    for group in sorted({str(c["snr_db"]) for c in commands}):
        members = [c for c in commands if str(c["snr_db"]) == group]
        rates.append(100.0 * sum(right(c, results[c["file"]], rule)
                                 for c in members) / len(members))
    accept = statistics.mean(rates) if rates else float("nan")
    false = (100.0 * sum(taken(results[c["file"]], rule) for c in negatives)
             / len(negatives)) if negatives else float("nan")
    return accept, false


def rates(sets, rule):
    """Acceptance of the real and synthetic commands, and false accepts of the synthetic
    negatives and of the real non-commands (the continuous utterances and the short
    recordings together), in %, by (set, "accept" or "false")."""
    found = {}
    for set_name in ("real", "synthetic"):
        clips, results = sets[set_name]
        found[(set_name, "accept")] = measure(clips, results, rule)[0]
    found[("synthetic", "false")] = measure(*sets["synthetic"], rule)[1]
    negatives = [(c, sets[s][1]) for s in ("real", "continuous")
                 for c in sets[s][0] if c["kind"] == "negative"]
    found[("real", "false")] = (100.0 * sum(taken(r[c["file"]], rule) for c, r in negatives)
                                / len(negatives))
    return found


def right(clip, result, rule):
    return (taken(result, rule) and result["intent"] == clip["intent"]
            and same_slots(clip["slots"], result["slots"]))


def report(name, sets, rule):
    max_mismatch, max_ratio = rule
    print(f"\n{name} (max_mismatch {max_mismatch}, max_ratio {max_ratio})")
    for set_name, (clips, results) in sets.items():
        commands = [c for c in clips if c["kind"] == "command"]
        negatives = [c for c in clips if c["kind"] == "negative"]
        if commands:
            for snr in sorted({c["snr_db"] for c in commands}, key=str, reverse=True):
                group = [c for c in commands if c["snr_db"] == snr]
                n = sum(right(c, results[c["file"]], rule) for c in group)
                label = f"{snr} dB" if isinstance(snr, int) else snr
                print(f"  {set_name:<10} acceptance {label:>6}  {100.0 * n / len(group):5.1f} %  "
                      f"({n} of {len(group)})")
            refused = Counter(reason(results[c["file"]], rule) for c in commands
                              if not taken(results[c["file"]], rule))
            print(f"  {set_name:<10} refused by reason: "
                  + (", ".join(f"{k} {v}" for k, v in refused.most_common()) or "none"))
            wrong = [c for c in commands if taken(results[c["file"]], rule)
                     and not right(c, results[c["file"]], rule)]
            print(f"  {set_name:<10} taken as another command or wrong slots: {len(wrong)}")
            if set_name == "real":
                for c in commands:
                    r = results[c["file"]]
                    if not right(c, r, rule):
                        print(f"    miss {c['file']}: {reason(r, rule) or 'wrong'} "
                              f"{r['text']!r} (free {r['free_text']!r}, {measures(r)})")
            times = [results[c["file"]]["ms"] for c in commands]
            print(f"  {set_name:<10} time per command  median {statistics.median(times):.0f} ms, "
                  f"p95 {percentile(times, 0.95):.0f} ms")
        if negatives:
            accepted = [c for c in negatives if taken(results[c["file"]], rule)]
            print(f"  {set_name:<10} false accepts  {100.0 * len(accepted) / len(negatives):5.1f} %"
                  f"  ({len(accepted)} of {len(negatives)})")
            for c in accepted:
                r = results[c["file"]]
                print(f"    {c['file']} ({c['category']}, {c.get('text', '')!r}) -> {r['intent']} "
                      f"{r['text']!r} (free {r['free_text']!r}, {measures(r)})")


def measures(result):
    ratio = result.get("ratio")
    ratio = "none" if ratio is None else f"{ratio:.2f}"
    return (f"mismatch {result['mismatch']:.2f}, letters {result['by_letters'] or 'accept'}, "
            f"ratio {ratio}, no-speech {result['no_speech_prob']:.2f}")


def plot(path, curves, letters_only, rule):
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
        axis.plot(RATIOS, values, style, color=colour, label=label)
        # The letters alone (no ratio rule), as a dot at the left edge.
        axis.plot([RATIOS[0]], [letters_only[(model, set_name, what)]], "o", color=colour,
                  fillstyle="none" if set_name == "synthetic" else "full")
    for axis, title in [(left, "commands accepted with intent and slots (%)"),
                        (right_, "non-commands accepted (%)")]:
        axis.axvline(rule[1], color="grey", linewidth=0.8)
        axis.set_xlabel(f"max_ratio (nats; max_mismatch {rule[0]}; "
                        "dots: the letters alone)")
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
    ap.add_argument("--max-mismatch", type=float, default=0.45,
                    help="the letters' limit (default: [commands] max_mismatch's)")
    ap.add_argument("--max-ratio", type=float, default=MAX_RATIO,
                    help="where the table is read (default: [commands] max_ratio's)")
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
    curves, letters_only, dump = {}, {}, []
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
            rule = (args.max_mismatch, args.max_ratio)
            report(name, sets, rule)
            for ratio in [None] + RATIOS:
                for (set_name, what), value in rates(sets, (args.max_mismatch, ratio)).items():
                    if ratio is None:
                        letters_only[(name, set_name, what)] = value
                    else:
                        curves.setdefault((name, set_name, what), []).append(value)
            print("  sweep (max_ratio: real acceptance / synthetic acceptance / real false "
                  "accepts / synthetic false accepts, %):")
            columns = [("real", "accept"), ("synthetic", "accept"), ("real", "false"),
                       ("synthetic", "false")]
            print("    letters " + "  ".join(f"{letters_only[(name, *k)]:5.1f}"
                                              for k in columns))
            for index in range(0, len(RATIOS), 2):
                row = [curves[(name, *k)][index] for k in columns]
                print(f"    {RATIOS[index]:5.2f}   " + "  ".join(f"{v:5.1f}" for v in row))
    if args.plot:
        plot(args.plot, curves, letters_only, (args.max_mismatch, args.max_ratio))
    if args.json:
        args.json.write_text("".join(json.dumps(r, default=str) + "\n" for r in dump))


if __name__ == "__main__":
    main()
