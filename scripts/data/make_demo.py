#!/usr/bin/env python3
"""Make the demo recording examples/demo/session.wav that `scripts/run.sh` (no arguments)
plays to `voxd run`: spoken commands of the repository's grammars and a sentence of ordinary
speech, one after the other, as a person would say them to the daemon.

Pieces, in order (PIECES below): real recorded commands from ../shared/data/real/commands/
(Home Assistant style phrases recorded by a person for OHF-Voice/speech-to-phrase,
Apache-2.0), one command spoken by espeak-ng (the recordings hold no light command the
grammars know), and one sentence of the LJ Speech reader (public domain) from
../shared/data/real/continuous/. Each piece is cut to its speech (10 ms frames louder than
TRIM_DB below the piece's loudest, plus PAD_S on each side), scaled to a peak of PEAK, and
followed by GAP_S of silence; LEAD_S of silence comes first. Written as 16 kHz mono 16-bit
PCM with examples/demo/session.json, which lists each piece: source, text, what voxd should
make of it, and its span in the file. A rerun with the same inputs and espeak-ng writes
identical files.

Needs espeak-ng and sox (scripts/setup.sh) and numpy (scripts/data/speech.py re-runs this
with .venv's python when needed).

Usage: scripts/data/make_demo.py [--shared ../shared/data/real] [--out examples/demo]
"""
import argparse
import json
import pathlib
import tempfile
import wave

from speech import (RATE, ROOT, espeak_version, np, speak, to_pcm16, write_if_changed,
                    write_wav)

# (source, text, the intent it is heard as or None for speech that is no command, its slots).
# A source is a file under the shared real-speech folder (with @START-END in seconds for a
# part of it), or "espeak-ng:VOICE:WPM".
PIECES = [
    ("commands/stp_set_a_timer_for_30_seconds.wav", "set a timer for 30 seconds",
     "TimerStart", {"hours": 0, "minutes": 0, "seconds": 30}),
    ("espeak-ng:en-us:150", "turn on the kitchen lights", "LightOn",
     {"domain": "light", "room": "kitchen"}),
    ("continuous/ljspeech_lj001.wav@22.122-27.261",
     "produced the block books, which were the immediate predecessors of the true printed "
     "book,", None, {}),
    ("commands/stp_next.wav", "next", "MediaNext", {}),
    ("commands/stp_cancel_all_timers.wav", "cancel all timers", "TimerCancelAll", {}),
]
LEAD_S = 0.5
GAP_S = 1.0
PAD_S = 0.25
TRIM_DB = 35.0
PEAK = 0.5


def read_pcm16(path, span=None):
    """A 16 kHz mono 16-bit WAV (the shared recordings' format) as float64, or the part of it
    between span's (start, end) seconds."""
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
            raise SystemExit(f"make_demo: {path}: expected 16 kHz mono 16-bit PCM")
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768.0
    if span is not None:
        x = x[int(span[0] * RATE): int(span[1] * RATE)]
    return x


def speech_only(x):
    """x cut to the 10 ms frames within TRIM_DB of its loudest, with PAD_S around them."""
    frames = x[: x.size // 160 * 160].reshape(-1, 160)
    level = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - TRIM_DB)
    pad = int(PAD_S * RATE)
    return x[max(0, loud[0] * 160 - pad): min(x.size, (loud[-1] + 1) * 160 + pad)]


def piece_audio(source, text, shared, tmp):
    if source.startswith("espeak-ng:"):
        _, voice, wpm = source.split(":")
        return speak(text, voice, int(wpm), tmp)
    name, _, span = source.partition("@")
    span = tuple(float(s) for s in span.split("-")) if span else None
    return read_pcm16(shared / name, span)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=pathlib.Path, default=ROOT.parent / "shared/data/real")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "examples/demo")
    args = ap.parse_args()

    parts = [np.zeros(int(LEAD_S * RATE))]
    at = parts[0].size
    listed = []
    with tempfile.TemporaryDirectory() as tmp:
        for source, text, intent, slots in PIECES:
            x = speech_only(piece_audio(source, text, args.shared, tmp))
            x = x * (PEAK / np.max(np.abs(x)))
            listed.append({"source": source, "text": text, "intent": intent, "slots": slots,
                           "start_s": round(at / RATE, 3),
                           "end_s": round((at + x.size) / RATE, 3)})
            gap = np.zeros(int(GAP_S * RATE))
            parts += [x, gap]
            at += x.size + gap.size

    args.out.mkdir(parents=True, exist_ok=True)
    wav = args.out / "session.wav"
    with tempfile.TemporaryDirectory() as tmp:
        made = pathlib.Path(tmp) / "session.wav"
        write_wav(made, to_pcm16(np.concatenate(parts)))
        wrote = write_if_changed(wav, made.read_bytes())
    manifest = {"generator": "scripts/data/make_demo.py", "tts": espeak_version(),
                "rate": RATE, "duration_s": round(at / RATE, 3), "pieces": listed}
    wrote |= write_if_changed(args.out / "session.json",
                              (json.dumps(manifest, indent=1) + "\n").encode())
    print(f"{wav}: {at / RATE:.1f} s, {wav.stat().st_size // 1024} kB"
          f"{'' if wrote else ' (unchanged)'}")


if __name__ == "__main__":
    main()
