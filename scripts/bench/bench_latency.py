#!/usr/bin/env python3
"""Command latency of `voxd run`: from the end of each spoken command to its action starting.

The recording is data/daemon/latency_*.wav (scripts/data/make_daemon_audio.py --latency N: N
commands of tests/fixtures/daemon/grammar.toml, espeak-ng, pauses of 1.5-3 s, pink noise at
24 dB SNR). For each model and run, a fresh `voxd run` (the test config template, 2 threads
by default, actions that append a line to a file) listens to a private PulseAudio virtual
microphone (scripts/env/vmic.sh: cpal -> ALSA -> PulseAudio, 48 kHz stereo) while the file is
played into it at real time; `--source wav` reads it with `voxd run --wav FILE --realtime`
instead (no capture path).

Method. Every event carries clock_ms (wall ms on the daemon's clock); utterance times are on
the audio clock (ms since the source's first sample).
  1. Audio clock -> wall clock: the source starts when the daemon starts listening, just
     before `ready` is printed, so audio time a is heard at clock_ms = ready.clock_ms + a.
     Capture that starts late counts as latency (the estimate errs on the slow side). As a
     check, each speech_end can only be emitted once [segment] end_silence_ms of silence
     after its last voiced frame has been delivered, which bounds the audio clock's zero
     from above: min(speech_end.clock_ms - (end_ms - tail_ms + end_silence_ms)); the
     script prints both.
  2. Where the file began on the audio clock (the playback offset): the same file is first
     read directly (`voxd listen --wav`, same [vad]/[segment] settings, offset 0); the offset
     is the median over the commands of (utterance start and end heard live) - (the same
     utterance's start and end read directly). The front end's own delay (voice-onset
     and pre-roll rules) is the same in both and cancels. With --source wav it is 0.
  3. A command's spoken end, on the daemon's clock: ready.clock_ms + offset + the manifest's
     offset_s (last 10 ms frame above 1 % of the command's peak, clean speech).
Latency = clock_ms of the action's `started` event - the spoken end. Its parts: close (the
silence waited: for an utterance that ended, speech_end.clock_ms - spoken end, the
end_silence_ms the segmenter waits plus capture periods; for one closed early ([commands]
early_close_ms, the intent event's `early`), its end on the audio clock - spoken end, the
silence heard before the close), recognition (the intent event's recognize_ms), and closed
to action (the action's start after the close: recognition not yet done, queueing, starting
the process; less than recognize_ms when recognition began before the close). Recognised =
right intent and slots; refused = a not_recognized outcome; wrong = another intent; missed =
no utterance. Early = recognised commands closed early. Cut = commands whose speech went on
after an early close (a second outcome inside the same spoken command), or that were closed
early with the wrong intent or slots: each is listed.

--grammars home runs the Home Assistant example grammars (grammars/home.toml, media.toml,
timers.toml) instead of the test grammar, every intent's `run` replaced by the line-writing
action; the commands' intents and slots are then those grammars' own (EXPECT_HOME).

Usage: scripts/bench/bench_latency.py [--models tiny.en base] [--threads 2] [--runs 3]
                                [--source vmic|wav] [--commands 60] [--json FILE]
                                [--grammars test|home]
"""
import re
import argparse
import json
import os
import pathlib
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOXD = ROOT / "target" / "release" / "voxd"
FIXTURES = ROOT / "tests" / "fixtures" / "daemon"
DATA = ROOT / "data" / "daemon"
# The segmenter's defaults (config.toml [segment]); the test config does not change them.
END_SILENCE_MS, TAIL_MS = 400, 300
HOME_GRAMMARS = ["home.toml", "media.toml", "timers.toml"]
# The test grammar's intents as the Home Assistant grammars name them, and their slots.
EXPECT_HOME = {
    "LightOn": lambda s: ("LightOn", s),
    "LightOff": lambda s: ("LightOff", s),
    "SetTimer": lambda s: ("TimerStart", {"hours": 0, "minutes": s["minutes"], "seconds": 0}),
    "SetVolume": lambda s: ("VolumeSet", {"volume": s["level"]}),
    "PauseMusic": lambda s: ("MediaPause", {}),
    "PlayMusic": lambda s: ("MediaPlay", {}),
}
LOG_INTENT = 'run = ["sh", "-c", "printf \'%s\\\\n\' \\"$VOXD_INTENT\\" >> actions.log"]'


def log(msg):
    print(f"bench_latency: {msg}", file=sys.stderr, flush=True)


def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def setup_dir(model, threads, grammars="test"):
    """A folder with config.toml (from the test template), the grammar and actions/."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="voxd-latency-"))
    text = (FIXTURES / "config.toml").read_text()
    text = text.replace("@MODEL@", str(ROOT / "models" / model))
    text = text.replace("threads = 2", f"threads = {threads}")
    if grammars == "home":
        text = text.replace('grammars = ["grammar.toml"]',
                            f"grammars = {json.dumps(HOME_GRAMMARS)}")
        for name in HOME_GRAMMARS:
            source = (ROOT / "grammars" / name).read_text()
            logged = re.sub(r"^run = \[.*\]( *#.*)?$", lambda _: LOG_INTENT, source, flags=re.M)
            (d / name).write_text(logged)
    else:
        shutil.copy(FIXTURES / "grammar.toml", d / "grammar.toml")
    (d / "config.toml").write_text(text)
    (d / "actions").mkdir()
    return d


def expected_items(items, grammars):
    """The manifest's commands with the intent, slots and log line the grammars give."""
    if grammars != "home":
        return items
    out = []
    for item in items:
        intent, slots = EXPECT_HOME[item["intent"]](item["slots"])
        out.append(dict(item, intent=intent, slots=slots, log=intent))
    return out


def reference_utterances(wav, config):
    """(start_ms, end_ms) of every utterance in the file read directly (offset 0)."""
    out = subprocess.run([str(VOXD), "--config", str(config), "listen", "--wav", str(wav)],
                         check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [(e["start_ms"], e["end_ms"]) for e in events if e["event"] == "speech_end"]


def overlapping(span, items, offset):
    """Index of the manifest item whose speech span (moved by offset ms) overlaps span."""
    a, b = span
    for k, item in enumerate(items):
        if a < item["offset_s"] * 1000 + offset and b > item["onset_s"] * 1000 + offset:
            return k
    return None


class Daemon:
    """`voxd run`, its JSON lines collected by a thread."""

    def __init__(self, args, env):
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.lines = queue.Queue()
        self.events = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                e = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if e is None:
                return None
            self.events.append(e)
            if pred(e):
                return e

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.wait(lambda e: e["event"] == "stopped", 60)
        self.proc.wait(timeout=30)
        return self.events


def one_run(model, threads, source, latency, reference, grammars):
    d = setup_dir(model, threads, grammars)
    items = expected_items(latency["items"], grammars)
    args = [str(VOXD), "run", "--config", str(d / "config.toml"), "--stdout", "json",
            "-t", str(threads), "--no-watch"]
    env = dict(os.environ)
    env.pop("VOXD_LOG", None)
    mic = None
    try:
        if source == "wav":
            args += ["--wav", str(DATA / latency["16k"]), "--realtime"]
            daemon = Daemon(args, env)
            if daemon.wait(lambda e: e["event"] == "ready", 120) is None:
                sys.exit("bench_latency: voxd run did not get ready")
            daemon.wait(lambda e: e["event"] == "stopped", latency["duration_s"] + 60)
            events = daemon.stop()
        else:
            mic = d / "vmic"
            out = subprocess.run([str(ROOT / "scripts" / "env" / "vmic.sh"), "start", str(mic)],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout
            env.update(line.split("=", 1) for line in out.splitlines() if "=" in line)
            daemon = Daemon(args, env)
            if daemon.wait(lambda e: e["event"] == "ready", 120) is None:
                sys.exit("bench_latency: voxd run did not get ready")
            subprocess.run([str(ROOT / "scripts" / "env" / "vmic.sh"), "play", str(mic),
                            str(DATA / latency["48k_stereo"])], check=True, env=env)
            # The last command's outcome (the playback offset is >= 0, and every earlier
            # utterance ends well before the last command begins), then its action.
            last_onset = items[-1]["onset_s"] * 1000
            daemon.wait(lambda e: e["event"] in ("intent", "not_recognized")
                        and e["end_ms"] >= last_onset, 30)
            daemon.wait(lambda e: False, 2)
            events = daemon.stop()
    finally:
        if mic is not None:
            subprocess.run([str(ROOT / "scripts" / "env" / "vmic.sh"), "stop", str(mic)],
                           stdout=subprocess.DEVNULL)
        actions_log = (d / "actions" / "actions.log")
        logged = actions_log.read_text().splitlines() if actions_log.exists() else []
        shutil.rmtree(d, ignore_errors=True)
    return analyse(events, items, reference, source, logged)


def analyse(events, items, reference, source, logged):
    ready = next(e for e in events if e["event"] == "ready")
    zero = ready["clock_ms"]
    ends = [e for e in events if e["event"] == "speech_end"]
    # The playback offset: live utterances against the same utterances read directly.
    offset = 0.0
    if source == "vmic":
        first = next(e for e in events if e["event"] == "speech_start")
        coarse = first["start_ms"] - reference[0][0]
        diffs = []
        for e in ends:
            k = overlapping((e["start_ms"] - coarse, e["end_ms"] - coarse),
                            [{"onset_s": a / 1000, "offset_s": b / 1000} for a, b in reference],
                            0)
            if k is not None:
                diffs += [e["start_ms"] - reference[k][0], e["end_ms"] - reference[k][1]]
        offset = statistics.median(diffs)
    bound = min(e["clock_ms"] - (e["end_ms"] - TAIL_MS + END_SILENCE_MS) for e in ends)

    end_clock = {e["end_ms"]: e["clock_ms"] for e in ends}
    started = {}
    for e in events:
        if e["event"] == "action" and e["status"] == "started":
            started[(e["end_ms"], e["intent"])] = e["clock_ms"]
    rows = []
    counts = {"recognised": 0, "refused": 0, "wrong": 0, "missed": 0, "early": 0, "cut": 0}
    seen, recognised, early, cut = set(), set(), set(), []
    for e in events:
        if e["event"] not in ("intent", "not_recognized"):
            continue
        k = overlapping((e["start_ms"], e["end_ms"]), items, offset)
        if k is None:
            continue
        item = items[k]
        if k in seen:
            # A second outcome inside one spoken command: speech went on after a close.
            if k in early:
                cut.append(f"{item['text']!r}: more speech after the early close "
                           f"({e['event']} {e.get('text', '')!r})")
            continue
        seen.add(k)
        if e.get("early"):
            early.add(k)
        if e["event"] == "not_recognized":
            counts["refused"] += 1
            continue
        if e["intent"] != item["intent"] or e["slots"] != item["slots"]:
            counts["wrong"] += 1
            if e.get("early"):
                cut.append(f"{item['text']!r}: closed early as {e['intent']} {e['slots']} "
                           f"({e['text']!r})")
            continue
        counts["recognised"] += 1
        recognised.add(k)
        spoken_end = zero + offset + item["offset_s"] * 1000
        action = started.get((e["end_ms"], e["intent"]))
        # Where the utterance was closed, on the daemon's clock.
        closed = zero + e["end_ms"] if e.get("early") else end_clock[e["end_ms"]]
        vad = closed - spoken_end
        if action is None:
            continue
        total = action - spoken_end
        rows.append({"latency": total, "vad": vad, "recognize": e["recognize_ms"],
                     "after_end": total - vad, "early": bool(e.get("early"))})
    counts["missed"] = len(items) - len(seen)
    counts["early"] = len(early & recognised)
    counts["cut"] = len(cut)
    # The actions file holds the recognised commands' lines, in the order spoken.
    expected = [items[k]["log"] for k in sorted(recognised)]
    return {"rows": rows, "counts": counts, "cut": cut, "offset_ms": offset, "zero_ms": zero,
            "zero_bound_ms": bound, "actions_logged": len(logged),
            "log_matches": logged == expected}


def summary(run):
    lat = [r["latency"] for r in run["rows"]]
    return {"p50": percentile(lat, 50), "p95": percentile(lat, 95), "max": max(lat),
            "vad": percentile([r["vad"] for r in run["rows"]], 50),
            "recognize": percentile([r["recognize"] for r in run["rows"]], 50),
            "recognize_p95": percentile([r["recognize"] for r in run["rows"]], 95),
            "after_end": percentile([r["after_end"] for r in run["rows"]], 50)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--source", choices=["vmic", "wav"], default="vmic")
    ap.add_argument("--commands", type=int, default=60)
    ap.add_argument("--json", metavar="FILE", help="also write every run's numbers here")
    ap.add_argument("--grammars", choices=["test", "home"], default="test",
                    help="the test grammar, or the Home Assistant example grammars")
    args = ap.parse_args()
    if not VOXD.exists():
        sys.exit(f"bench_latency: {VOXD} missing; run `cargo build --release` first")
    for m in args.models:
        if not (ROOT / "models" / m / "model.bin").exists():
            sys.exit(f"bench_latency: models/{m} missing; run scripts/setup.sh")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "data" / "make_daemon_audio.py"),
                    "--latency", str(args.commands)], check=True)
    latency = json.loads((DATA / "latency.json").read_text())
    ref_dir = setup_dir(args.models[0], args.threads)
    reference = reference_utterances(DATA / latency["16k"], ref_dir / "config.toml")
    shutil.rmtree(ref_dir, ignore_errors=True)
    if len(reference) != len(latency["items"]):
        sys.exit(f"bench_latency: the file read directly gives {len(reference)} utterances "
                 f"for {len(latency['items'])} commands")

    load_before = os.getloadavg()
    results = {}
    for model in args.models:
        for r in range(args.runs):
            log(f"{model}, run {r + 1} of {args.runs} ({latency['duration_s']:.0f} s of audio)")
            run = one_run(model, args.threads, args.source, latency, reference, args.grammars)
            run["summary"] = summary(run)
            results.setdefault(model, []).append(run)
            s = run["summary"]
            log(f"  p50 {s['p50']:.0f} ms, p95 {s['p95']:.0f} ms, max {s['max']:.0f} ms; "
                f"{run['counts']}; playback offset {run['offset_ms']:.0f} ms; audio clock zero "
                f"{run['zero_ms']} ms (bound {run['zero_bound_ms']} ms); actions logged "
                f"{run['actions_logged']}, in order: {run['log_matches']}")
            for line in run["cut"]:
                log(f"  cut: {line}")
    load_after = os.getloadavg()

    n = len(latency["items"])
    source = ("the PulseAudio virtual microphone (cpal, ALSA, 48 kHz stereo)"
              if args.source == "vmic" else "`--wav FILE --realtime`")
    grammar = ("the Home Assistant example grammars" if args.grammars == "home"
               else "the test grammar")
    print(f"{n} commands of {grammar} ({latency['duration_s']:.0f} s, pauses 1.5-3 s, pink noise "
          f"{latency['noise']['snr_db']} dB) played at real time through {source}; "
          f"{args.threads} threads; {args.runs} run(s) per model; load average "
          f"{' '.join(f'{x:.1f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.1f}' for x in load_after)} after. Times in ms from the end of the "
          "spoken command; best / median over the runs of each run's statistic.\n")
    print("| model | recognised | closed early | cut | refused | wrong | missed | latency p50 | "
          "latency p95 | max | close p50 | recognition p50 (p95) | closed to action p50 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def bm(runs, key, fmt="{:.0f}"):
        vals = [r["summary"][key] for r in runs]
        return f"{fmt.format(min(vals))} / {fmt.format(statistics.median(vals))}"

    for model, runs in results.items():
        counts = {k: statistics.median([r["counts"][k] for r in runs]) for k in runs[0]["counts"]}
        print(f"| {model} | {counts['recognised']:.0f} | {counts['early']:.0f} | "
              f"{counts['cut']:.0f} | {counts['refused']:.0f} | "
              f"{counts['wrong']:.0f} | {counts['missed']:.0f} | {bm(runs, 'p50')} | "
              f"{bm(runs, 'p95')} | {bm(runs, 'max')} | {bm(runs, 'vad')} | "
              f"{bm(runs, 'recognize')} ({bm(runs, 'recognize_p95')}) | {bm(runs, 'after_end')} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
