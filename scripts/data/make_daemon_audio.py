#!/usr/bin/env python3
"""Generate the daemon's end-to-end recordings deterministically into data/daemon/.

They are spoken from the grammar in tests/fixtures/daemon/grammar.toml, which
tests/live/daemon.rs runs `voxd run` with and scripts/bench/bench_latency.py times.

session (manifest.json, "session"): 10 spoken commands and 6 utterances that are not
  commands (ordinary speech, and near misses that share words with the grammar), in a
  fixed order with the chatter between commands. 1.5 s of silence first, a pause drawn
  uniformly from 1.5-3.0 s between items, 3.0 s of silence last; pink noise at 24 dB SNR
  over the whole file.
clips (manifest.json, "clips"): single commands with 0.5 s of silence before and 1.5 s
  after, same noise rule, for tests that speak one command at a time (the reload tests, the
  vanishing microphone).
latency (--latency N; latency.json): N commands (at least 50) cycling through the same
  command list in a shuffled order, with the same pause and noise rules, for the latency
  benchmark.

Every recording is written as NAME_16k.wav (16 kHz mono, PCM 16-bit: `voxd run --wav`) and
NAME_48k_stereo.wav (48 kHz, 2 channels, PCM 16-bit: played into the virtual microphone).
Each item in a manifest has its text, kind ("command" or "chatter"), intent and slots as
the daemon reports them (null and {} for chatter), "log" (the line its action appends to
actions.log; null for chatter), voice, wpm, and its speech span on the 16 kHz timeline
(onset_s/offset_s and the inclusive *_sample indices), measured on the clean speech by the
rule of scripts/data/make_segmentation.py (10 ms frames whose RMS exceeds 1 % of the item's
peak).

The commands are ones tiny.en recognises reliably through voxd (checked with
`voxd recognize` and `voxd run --wav`): the end-to-end test must not be flaky, and
recognition accuracy is measured elsewhere (scripts/bench/bench_commands.py).

Pipeline (fixed: a rerun writes identical files on the same machine and package versions):
espeak-ng -> sox (16 kHz, repeatable, no dither) -> trimmed at 1 % of the peak -> peak 0.5
-> placed on the timeline -> pink noise from numpy's PCG64 with a fixed seed, scaled so that
10*log10(P_speech / P_noise) = SNR (P_speech: mean square inside the speech spans; P_noise:
mean square over the whole file) -> 16-bit; 48 kHz stereo by sox (rate -v, both channels
equal). Files already holding the same bytes are not rewritten.

Needs espeak-ng, sox (scripts/setup.sh) and numpy (re-runs itself with .venv's python).

Usage: scripts/data/make_daemon_audio.py [--out data/daemon] [--latency N]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from speech import RATE, ROOT, espeak_version, noise, np, speak, to_pcm16, trim, write_wav

SPEECH_PEAK = 0.5
MAX_PEAK = 0.95
FRAME = RATE // 100
ONSET_FRACTION = 0.01
OUT_RATE = 48000
LEAD_S, TRAIL_S = 1.5, 3.0
PAUSE_S = (1.5, 3.0)
CLIP_LEAD_S, CLIP_TRAIL_S = 0.5, 1.5
NOISE_KIND, SNR_DB = "pink", 24
SEED = 20250105
LATENCY_MIN = 50

# (text, voice, wpm, intent, slots as the daemon reports them, the actions.log line)
COMMANDS = [
    ("turn on the kitchen lights", "en-us", 150, "LightOn",
     {"domain": "light", "room": "kitchen"}, "LightOn kitchen"),
    ("set a timer for five minutes", "en-gb", 150, "SetTimer", {"minutes": 5}, "SetTimer 5"),
    ("pause the music", "en-us", 140, "PauseMusic", {}, "PauseMusic"),
    ("turn off the bedroom light", "en-gb", 150, "LightOff",
     {"domain": "light", "room": "bedroom"}, "LightOff bedroom"),
    ("switch on the garage lights", "en-us", 160, "LightOn",
     {"domain": "light", "room": "garage"}, "LightOn garage"),
    ("set the volume to thirty percent", "en-gb", 150, "SetVolume", {"level": 30},
     "SetVolume 30"),
    ("play the music", "en-us", 140, "PlayMusic", {}, "PlayMusic"),
    ("turn off the living room lights", "en-us", 150, "LightOff",
     {"domain": "light", "room": "living room"}, "LightOff living room"),
    ("set a timer for twenty minutes", "en-us", 150, "SetTimer", {"minutes": 20},
     "SetTimer 20"),
    ("switch off the office light", "en-gb", 150, "LightOff",
     {"domain": "light", "room": "office"}, "LightOff office"),
]

# (text, voice, wpm): ordinary speech, and near misses that share words with the grammar.
CHATTER = [
    ("what a lovely day it is today", "en-gb", 150),
    ("turn on the radio please", "en-us", 150),
    ("I think we should leave at six", "en-us", 150),
    ("set a timer for the pasta", "en-gb", 150),
    ("the kitchen is much warmer than the hall", "en-us", 150),
    ("pause for a moment and listen", "en-gb", 150),
]

# The session's order: C = next command, X = next chatter.
SESSION_ORDER = "CCXCCXCCXCXCXCXC"

# Single commands for the tests that speak one at a time: the reload tests (one of the
# grammar's, one of an intent it gains) and the vanishing microphone (one before, one after).
# New clips go last: each clip's noise seed follows its position.
CLIPS = {
    "kitchen_on": COMMANDS[0],
    "open_door": ("open the garage door", "en-us", 150, "OpenDoor", {"door": "garage"},
                  "OpenDoor garage"),
    "pause_music": COMMANDS[2],
}


def log(msg):
    print(f"make_daemon_audio: {msg}", file=sys.stderr, flush=True)


def speech_span(x):
    """(first, last) sample, inclusive, of the 10 ms frames above 1 % of the peak."""
    thr = ONSET_FRACTION * np.max(np.abs(x))
    starts = np.arange(0, x.size, FRAME)
    rms = np.array([np.sqrt(np.mean(x[s: s + FRAME] ** 2)) for s in starts])
    loud = np.flatnonzero(rms > thr)
    return int(starts[loud[0]]), int(min(starts[loud[-1]] + FRAME, x.size) - 1)


def spoken(text, voice, wpm, tmp, cache):
    key = (text, voice, wpm)
    if key not in cache:
        x = trim(speak(text, voice, wpm, tmp))
        cache[key] = x * (SPEECH_PEAK / np.max(np.abs(x)))
    return cache[key]


def command_item(c):
    text, voice, wpm, intent, slots, line = c
    return {"kind": "command", "text": text, "voice": voice, "wpm": wpm, "intent": intent,
            "slots": slots, "log": line}


def chatter_item(c):
    text, voice, wpm = c
    return {"kind": "chatter", "text": text, "voice": voice, "wpm": wpm, "intent": None,
            "slots": {}, "log": None}


def timeline(items, rng, lead_s, trail_s, tmp, cache, pauses=True):
    """The float mix with noise, and the items with their spans filled in."""
    speech = [spoken(i["text"], i["voice"], i["wpm"], tmp, cache) for i in items]
    gaps = [int(round(rng.uniform(*PAUSE_S) * RATE)) for _ in items[1:]] if pauses else []
    lead, trail = int(round(lead_s * RATE)), int(round(trail_s * RATE))
    total = lead + sum(s.size for s in speech) + sum(gaps) + trail
    x = np.zeros(total)
    pos, energy, count, placed = lead, 0.0, 0, []
    for k, (item, s) in enumerate(zip(items, speech)):
        x[pos: pos + s.size] = s
        a, b = speech_span(s)
        energy += float(np.sum(s[a: b + 1] ** 2))
        count += b + 1 - a
        placed.append({**item, "onset_s": round((pos + a) / RATE, 5),
                       "offset_s": round((pos + b) / RATE, 5),
                       "onset_sample": pos + a, "offset_sample": pos + b})
        pos += s.size + (gaps[k] if k < len(gaps) else 0)
    seed = int(rng.integers(0, 2**31))
    n = noise(NOISE_KIND, 1 << (total - 1).bit_length(), seed)[:total]
    n = n / np.sqrt(np.mean(n * n))
    x = x + n * np.sqrt(energy / count / 10.0 ** (SNR_DB / 10.0))
    peak = float(np.max(np.abs(x)))
    if peak > MAX_PEAK:
        x *= MAX_PEAK / peak
    return x, placed


def write_if_changed(tmp_path, dest):
    if dest.exists() and dest.read_bytes() == tmp_path.read_bytes():
        tmp_path.unlink()
        return False
    os.replace(tmp_path, dest)
    return True


def write_versions(out, name, x):
    """NAME_16k.wav and NAME_48k_stereo.wav; returns their names relative to out."""
    out16, out48 = out / f"{name}_16k.wav", out / f"{name}_48k_stereo.wav"
    out16.parent.mkdir(parents=True, exist_ok=True)
    tmp16 = out16.with_name(f".{out16.name}.tmp")
    write_wav(tmp16, to_pcm16(x))
    changed = write_if_changed(tmp16, out16)
    tmp48 = out48.with_name(f".{out48.name}.tmp")
    subprocess.run(["sox", "-R", "-D", "-V1", "-t", "raw", "-e", "floating-point", "-b", "32",
                    "-c", "1", "-r", str(RATE), "-L", "-", "-t", "wav", "-e", "signed-integer",
                    "-b", "16", "-c", "2", str(tmp48), "rate", "-v", str(OUT_RATE),
                    "remix", "1", "1"], input=x.astype("<f4").tobytes(), check=True)
    changed |= write_if_changed(tmp48, out48)
    if changed:
        log(f"{name}: written")
    return {"16k": str(out16.relative_to(out)), "48k_stereo": str(out48.relative_to(out)),
            "duration_s": round(x.size / RATE, 5)}


def write_json(path, value):
    data = (json.dumps(value, indent=1, ensure_ascii=False) + "\n").encode()
    if not (path.exists() and path.read_bytes() == data):
        path.write_bytes(data)


def header():
    return {"generator": "scripts/data/make_daemon_audio.py", "tts": espeak_version(), "rate": RATE,
            "grammar": "tests/fixtures/daemon/grammar.toml",
            "noise": {"kind": NOISE_KIND, "snr_db": SNR_DB},
            "span_rule": "10 ms frames of the trimmed item; onset = first sample of the first "
                         "frame whose RMS exceeds 1% of the item's peak, offset = last sample "
                         "of the last such frame; *_sample are inclusive 16 kHz indices"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "data" / "daemon"))
    ap.add_argument("--latency", type=int, metavar="N",
                    help=f"also write the latency recording of N (>= {LATENCY_MIN}) commands")
    args = ap.parse_args()
    if args.latency is not None and args.latency < LATENCY_MIN:
        sys.exit(f"make_daemon_audio: --latency needs at least {LATENCY_MIN} commands")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = {}
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        commands, chatter = iter(COMMANDS), iter(CHATTER)
        items = [command_item(next(commands)) if k == "C" else chatter_item(next(chatter))
                 for k in SESSION_ORDER]
        rng = np.random.Generator(np.random.PCG64(SEED))
        x, placed = timeline(items, rng, LEAD_S, TRAIL_S, tmp, cache)
        session = {**write_versions(out, "session", x), "items": placed}
        clips = {}
        for k, (name, c) in enumerate(CLIPS.items()):
            crng = np.random.Generator(np.random.PCG64(SEED + 1 + k))
            x, placed = timeline([command_item(c)], crng, CLIP_LEAD_S, CLIP_TRAIL_S, tmp,
                                 cache)
            clips[name] = {**write_versions(out, f"clips/{name}", x), "items": placed}
        write_json(out / "manifest.json", {**header(), "session": session, "clips": clips})
        log(f"session: {len(COMMANDS)} commands, {len(CHATTER)} chatter, "
            f"{session['duration_s']:.1f} s")

        if args.latency:
            lrng = np.random.Generator(np.random.PCG64(SEED + 100))
            order = []
            while len(order) < args.latency:
                order += [COMMANDS[k] for k in lrng.permutation(len(COMMANDS))]
            items = [command_item(c) for c in order[: args.latency]]
            x, placed = timeline(items, lrng, LEAD_S, TRAIL_S, tmp, cache)
            latency = {**header(), **write_versions(out, "latency", x), "items": placed}
            write_json(out / "latency.json", latency)
            log(f"latency: {len(items)} commands, {latency['duration_s']:.1f} s")


if __name__ == "__main__":
    main()
