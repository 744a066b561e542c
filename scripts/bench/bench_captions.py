#!/usr/bin/env python3
"""How soon does each spoken word show in live captions, and how soon is it final?

Plays a recording to `voxd run --mode captions --wav FILE --realtime`, so audio arrives as a
microphone would deliver it and the audio clock runs with the wall clock from `ready` on.
Two recordings are known:

- the real one, `../shared/data/real/continuous/ljspeech_lj001.wav` (32 sentences of one
  reader; each sentence's start, end and text in `continuous.tsv` beside its folder);
- the flite captions recording (`scripts/data/make_captions.py`, `data/captions/long.wav`:
  jfk.wav twice and paragraphs in four flite voices with pauses; each piece's start, end and
  text in `manifest.json` beside it).

Word times inside a sentence are estimated proportionally: the sentence's span is shared
among its words by characters, and a word ends where its share ends.

For every spoken word it measures, from the word's end:
- **shown**: its first appearance on the caption line, in a partial or a final (the line is
  the finals so far followed by the partial; the partial's words are aligned to the spoken
  words after those the finals cover);
- **final**: its appearance in a final (the finals' words aligned to the spoken words; a
  spoken word the finals skip counts when the next aligned one comes).

The time of an event is its wall clock (`clock_ms`) at real time, or with `--fast` (the file
read as fast as it goes) the audio the daemon had heard when it decided the text
(`heard_ms`): the delay the commit policy itself causes, without the compute time.

Also: the finals' word error rate against the spoken text and against the offline
transcription of the same file with the same model (`voxd transcribe`), every text through
the same normaliser (`words`, below), and the CPU time the daemon used per second of audio,
with the load average of the machine during the run. `--differences` lists, after each row,
where the finals differ from the offline transcription and from the spoken text.

Usage: scripts/bench/bench_captions.py [--recordings lj flite] [--models tiny.en base]
           [--threads 2] [--repeat 1] [--fast] [--latency low|balanced]
           [--commit agreement|alignatt] [--differences]
"""
import argparse
import difflib
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOXD = ROOT / "target/release/voxd"
RECORDINGS = {
    "lj": ROOT.parent / "shared/data/real/continuous/ljspeech_lj001.wav",
    "flite": ROOT / "data/captions/long.wav",
}


# The WER normaliser, applied alike to the spoken text, the finals and the offline
# transcription (Whisper's English normaliser in spirit; tests/common/captions.rs has the
# same rules): lower case, punctuation and hyphens dropped, filler words left out, numbers
# written as digits ("fourteen sixty-two" and "1462" alike, "fifteenth" and "15th"),
# British spellings made American by rule ("-our" -> "-or", "-lled" -> "-led", "-ise" ->
# "-ize"), and two or three words written as one where either text writes them as one
# ("lower case" and "lowercase").
UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
CARDINALS = {w: n for n, w in enumerate(UNITS)} | {w: 20 + 10 * n for n, w in enumerate(TENS)}
ORDINALS = {"first": 1, "third": 3, "fifth": 5, "eighth": 8, "ninth": 9, "twelfth": 12} | {
    w + "th": n for w, n in CARDINALS.items() if n >= 4 and not w.endswith(("t", "e", "ve", "y"))
} | {w[:-1] + "ieth": n for w, n in CARDINALS.items() if w.endswith("y")}
FILLERS = {"uh", "um", "hmm", "mm", "mhm", "ah", "er"}


def ordinal(n):
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def numbers(ws):
    """Runs of number words as digits; numbers said one after another ("fourteen sixty two")
    written one after another ("1462")."""
    out, i = [], 0
    while i < len(ws):
        if ws[i] not in CARDINALS and ws[i] not in ORDINALS:
            out.append(ws[i])
            i += 1
            continue
        digits, total, cur, last = "", 0, 0, ""
        while i < len(ws):
            w = ws[i]
            n = CARDINALS.get(w, ORDINALS.get(w))
            joins = n is not None and (
                (cur % 100 == 0 and (cur or total) and last != "number")
                or (n < 10 and cur % 100 >= 20 and cur % 10 == 0))
            if w in ("hundred", "thousand") and last == "number":
                if w == "hundred":
                    cur *= 100
                else:
                    total, cur = total + cur * 1000, 0
                last = "scale"
            elif w == "and" and last == "scale" and i + 1 < len(ws) and ws[i + 1] in CARDINALS:
                pass
            elif n is not None and (joins or not (cur or total)):
                cur += n
                last = "number" if cur % 100 < 20 or cur % 10 else "tens"
            elif n is not None:
                digits += str(total + cur)
                total, cur, last = 0, n, "number" if n < 20 else "tens"
            else:
                break
            i += 1
            if w in ORDINALS:
                break
        value = digits + str(total + cur)
        out.append(ordinal(int(value)) if ws[i - 1] in ORDINALS else value)
    return out


def spelling(w):
    w = re.sub(r"^(\w{3,})our(s|ed|ing|ite|ites|able)?$", r"\1or\2", w)
    w = re.sub(r"^(\w{3,}[aeiou])ll(ed|ing)$", r"\1l\2", w)
    return re.sub(r"^(\w{3,})is(e|es|ed|ing|ation|ations)$", r"\1iz\2", w)


def words(text):
    text = re.sub(r"(\d),(\d)", r"\1\2", text.lower())
    ws = re.sub(r"[^a-z0-9' ]", " ", re.sub(r"[-\u2013\u2014]", " ", text)).split()
    ws = [w.strip("'") for w in ws]
    return numbers([spelling(w) for w in ws if w and w not in FILLERS])


def compounds(ws, vocabulary):
    """Two or three words one after another written as one where `vocabulary` has them as
    one ("ne plus ultra" and "nepluultra" alike)."""
    out, i = [], 0
    while i < len(ws):
        n = next((n for n in (3, 2) if "".join(ws[i:i + n]) in vocabulary and i + n <= len(ws)),
                 1)
        out.append("".join(ws[i:i + n]))
        i += n
    return out


def word_errors(reference, hypothesis):
    r, h = words(reference), words(hypothesis)
    vocabulary = set(r) | set(h)
    r, h = compounds(r, vocabulary), compounds(h, vocabulary)
    row = list(range(len(h) + 1))
    for i, rw in enumerate(r):
        diagonal, row[0] = row[0], i + 1
        for j, hw in enumerate(h):
            diagonal, row[j + 1] = row[j + 1], min(diagonal + (rw != hw), row[j] + 1,
                                                   row[j + 1] + 1)
    return row[-1], len(r)


def differences(reference, hypothesis, context=3):
    """Where `hypothesis` differs from `reference` (normalised words), a line each:
    `... before [reference words -> hypothesis words] after ...`."""
    r, h = words(reference), words(hypothesis)
    vocabulary = set(r) | set(h)
    r, h = compounds(r, vocabulary), compounds(h, vocabulary)
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, r, h, autojunk=False).get_opcodes():
        if tag != "equal":
            before = " ".join(r[max(0, i1 - context):i1])
            after = " ".join(r[i2:i2 + context])
            out.append(f"{before} [{' '.join(r[i1:i2])} -> {' '.join(h[j1:j2])}] {after}")
    return out


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def timed_pieces(wav):
    """[(start_s, end_s, text)] of what was said, from the recording's tsv or manifest."""
    tsv = wav.parent.parent / f"{wav.parent.name}.tsv"
    if tsv.exists():
        rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:] if line.strip()]
        return [(float(r[0]), float(r[1]), r[2]) for r in rows]
    manifest = json.loads((wav.parent / "manifest.json").read_text())
    for entry in manifest["files"].values():
        if entry["file"] == wav.name:
            return [(p["start_s"], p["end_s"], p["text"]) for p in entry["pieces"]]
    sys.exit(f"bench_captions: no {tsv.name} beside {wav.parent} and {wav.name} is not in "
             f"{wav.parent / 'manifest.json'}")


def spoken_words(pieces):
    """[(word, end_ms)]: each piece's span shared among its words by characters."""
    out = []
    for start, end, text in pieces:
        ws = words(text)
        total = sum(len(w) for w in ws) or 1
        done = 0
        for w in ws:
            done += len(w)
            out.append((w, 1000 * (start + (end - start) * done / total)))
    return out


def align(spoken, hyp, free_end):
    """Edit-distance alignment of `hyp` against `spoken` (a prefix of it when `free_end`).
    Returns, per spoken index, the hypothesis index aligned to it (None if deleted), over the
    spoken prefix used."""
    n, m = len(spoken), len(hyp)
    inf = 1 << 30
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0], back[i][0] = i, 1
    for j in range(m + 1):
        cost[0][j], back[0][j] = j, 2
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            choices = (cost[i - 1][j - 1] + (spoken[i - 1] != hyp[j - 1]),
                       cost[i - 1][j] + 1, cost[i][j - 1] + 1)
            k = min(range(3), key=choices.__getitem__)
            cost[i][j], back[i][j] = choices[k], k
    end = min(range(n + 1), key=lambda i: (cost[i][m], -i)) if free_end else n
    aligned = [None] * end
    i, j = end, m
    while i > 0 and j > 0:
        k = back[i][j]
        if k == 0:
            aligned[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif k == 1:
            i -= 1
        else:
            j -= 1
    return aligned


def latencies(events, spoken, time_key):
    """Per spoken word: (shown after, final after) in ms, from the events in order."""
    names = [w for w, _ in spoken]
    finals_words, final_time = [], []
    shown = [None] * len(spoken)
    covered = 0  # spoken words the finals cover so far
    for e in events:
        if e["event"] not in ("partial", "final"):
            continue
        t = e[time_key]
        if e["event"] == "final":
            new = words(e["text"])
            finals_words += new
            final_time += [t] * len(new)
            # The spoken words these finals cover, after those covered before.
            aligned = align(names[covered:covered + len(new) + 10], new, True)
            for i in range(covered, covered + len(aligned)):
                shown[i] = t if shown[i] is None else shown[i]
            covered += len(aligned)
        else:
            partial = words(e["text"])
            aligned = align(names[covered:covered + len(partial) + 10], partial, True)
            for k, a in enumerate(aligned):
                if a is not None and shown[covered + k] is None:
                    shown[covered + k] = t
    # Finals: one alignment of all their words against everything said.
    aligned = align(names, finals_words, False)
    final = [None] * len(spoken)
    nxt = None
    for i in range(len(spoken) - 1, -1, -1):
        if aligned[i] is not None:
            nxt = final_time[aligned[i]]
        final[i] = nxt
    out = []
    for (_, end), s, f in zip(spoken, shown, final):
        if f is None:
            continue  # never final (the finals stop before it)
        s = f if s is None else min(s, f)
        out.append((s - end, f - end))
    return out, sum(1 for f in final if f is None)


def offline_text(model, wav, threads):
    """The offline transcription of the whole file, as `voxd transcribe --json` writes it."""
    out = subprocess.run([str(VOXD), "transcribe", "--json", "--log", "error", "--language", "en",
                          "--threads", str(threads), "--model", str(model), str(wav)],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return next(json.loads(line)["text"] for line in out.splitlines()
                if json.loads(line)["type"] == "transcript")


def run(model, wav, threads, fast, latency, commit):
    cmd = [str(VOXD), "run", "--mode", "captions", "--stdout", "json",
           "--log", "error", "--no-watch", "--threads", str(threads), "--model", str(model),
           "--wav", str(wav)]
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as config:
        config.write("[captions]\n")
        if latency:
            config.write(f'latency = "{latency}"\n')
        if commit:
            config.write(f'commit = "{commit}"\n')
    cmd[2:2] = ["--config", config.name]
    if not fast:
        cmd.append("--realtime")
    load_before = os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    lines = proc.stdout.read().splitlines()
    _, status, usage = os.wait4(proc.pid, 0)
    os.unlink(config.name)
    if status != 0:
        sys.exit(f"bench_captions: voxd exited with status {status}")
    events = [json.loads(line) for line in lines]
    audio_ms = events[-1]["audio_ms"]
    return {
        "events": events,
        "text": " ".join(e["text"] for e in events if e["event"] == "final"),
        "cpu": (usage.ru_utime + usage.ru_stime) / (audio_ms / 1000.0),
        "load": (load_before + os.getloadavg()[0]) / 2,
    }


def main():
    global VOXD
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", nargs="+", default=["lj", "flite"],
                    help="lj, flite, or paths of WAV files with a tsv or manifest")
    ap.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs per recording and model")
    ap.add_argument("--fast", action="store_true",
                    help="read the file as fast as it goes; times are audio heard (heard_ms)")
    ap.add_argument("--latency", choices=["low", "balanced"],
                    help="[captions] latency (default: voxd's default)")
    ap.add_argument("--commit", choices=["agreement", "alignatt"],
                    help="[captions] commit, how latency = low makes text final")
    ap.add_argument("--differences", action="store_true",
                    help="after each row, the finals' differences from the offline "
                         "transcription and from the spoken text")
    ap.add_argument("--voxd", help="the voxd binary to measure [target/release/voxd]")
    args = ap.parse_args()
    if args.voxd:
        VOXD = pathlib.Path(args.voxd)
    time_key = "heard_ms" if args.fast else "clock_ms"
    print(f"latency {args.latency or 'default'}, commit {args.commit or 'default'}, "
          f"{args.threads} threads, "
          f"{'fast (audio time)' if args.fast else 'real time (wall clock)'}")
    print("| recording | model | shown after p50 / p95 | final after p50 / p95 "
          "| WER vs spoken (offline) | vs offline | CPU per s of audio | load |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.recordings:
        wav = RECORDINGS.get(name, pathlib.Path(name))
        if not wav.exists():
            sys.exit(f"bench_captions: {wav} is missing (flite: scripts/data/make_captions.py "
                     f"--minutes 3)")
        pieces = timed_pieces(wav)
        spoken = spoken_words(pieces)
        spoken_text = " ".join(text for _, _, text in pieces)
        for model_name in args.models:
            model = ROOT / "models" / model_name
            offline = offline_text(model, wav, args.threads)
            offline_errors, n = word_errors(spoken_text, offline)
            for _ in range(args.repeat):
                r = run(model, wav, args.threads, args.fast, args.latency, args.commit)
                lat, never = latencies(r["events"], spoken, time_key)
                shown = [s for s, _ in lat]
                final = [f for _, f in lat]
                errors, _ = word_errors(spoken_text, r["text"])
                agree, n_offline = word_errors(offline, r["text"])
                late = f", {never} never final" if never else ""
                print(f"| {wav.stem} | {model_name} "
                      f"| {percentile(shown, 50) / 1000:.2f} / {percentile(shown, 95) / 1000:.2f} s "
                      f"| {percentile(final, 50) / 1000:.2f} / {percentile(final, 95) / 1000:.2f} s"
                      f"{late} | {100 * errors / n:.1f} % ({100 * offline_errors / n:.1f} %) "
                      f"| {100 * agree / n_offline:.1f} % | {100 * r['cpu']:.0f} % "
                      f"| {r['load']:.1f} |", flush=True)
                if args.differences:
                    for against, text in (("offline", offline), ("spoken", spoken_text)):
                        for line in differences(text, r["text"]):
                            print(f"  vs {against}: {line}")
                    for line in differences(spoken_text, offline):
                        print(f"  offline vs spoken: {line}")


if __name__ == "__main__":
    main()
