#!/usr/bin/env python3
"""Generate voxd's spoken test clips deterministically into tests/fixtures/clips/.

Each clip is a sentence spoken by espeak-ng (several voices and speeds), resampled by sox to
16 kHz, trimmed, given 0.3 s of silence before and after, optionally mixed with noise at a
fixed SNR, and written as 16 kHz mono 16-bit PCM WAV. The manifest clips.json lists every clip
(file, text spoken, voice, speed, noise kind, SNR, duration).

Pipeline per clip (all fixed, so a rerun writes byte-identical files on the same machine and
package versions):
  1. espeak-ng -v VOICE -s WPM -w tmp.wav TEXT         (22050 Hz, 16-bit)
  2. sox -R -D tmp.wav -> raw float32, 16 kHz (rate -v) (no dither, repeatable mode)
  3. trim samples below 1% of the peak at both ends; scale the speech to a peak of 0.5;
     pad 0.3 s of zeros on each side
  4. noise (if any): white, pink (1/f power) or brown (1/f^2 power) noise, shaped in the
     frequency domain from numpy's PCG64 Gaussian noise with a per-clip seed, scaled so that
     10*log10(P_speech / P_noise) = SNR, where P_speech is the mean square of the trimmed
     speech (padding excluded) and P_noise the mean square of the noise over the whole clip;
     the noise covers the whole clip, padding included
  5. if the mix peaks above 0.95 the whole clip is scaled down to 0.95; then rounded to int16

Needs espeak-ng, sox (scripts/setup.sh installs them) and numpy (re-runs itself with .venv's
python when the current one has no numpy: `scripts/setup.sh --reference` makes .venv). The
speech, noise and WAV helpers live in scripts/data/speech.py, shared with make_segmentation.py.

Usage: scripts/data/make_clips.py [--out tests/fixtures/clips]
"""
import argparse
import json
import pathlib
import sys
import tempfile

from speech import (RATE, ROOT, espeak_version, noise, np, slug, speak, to_pcm16, trim,
                    write_if_changed, write_wav)

PAD_S = 0.3
SPEECH_PEAK = 0.5
MAX_PEAK = 0.95
MIN_S, MAX_S = 1.5, 8.0
BASE_SEED = 20240611

# (text spoken, espeak-ng voice, words per minute, noise kind, SNR in dB or None)
CLIPS = [
    # voice commands
    ("turn on the kitchen lights", "en-us", 160, "none", None),
    ("set a timer for ten minutes", "en-gb", 150, "none", None),
    ("play the next song", "en+f3", 140, "none", None),
    ("turn off the bedroom lights please", "en+m3", 175, "white", 10),
    ("stop the music", "en-gb-x-rp", 130, "pink", 10),
    ("set the thermostat to twenty one degrees", "en+f2", 165, "none", None),
    ("call Alice on her mobile phone", "en-us+f4", 150, "brown", 10),
    ("remind me to buy milk at six thirty", "en-gb-scotland", 155, "none", None),
    ("open the garage door", "en-029", 140, "white", 20),
    ("switch the living room lights off", "en-us-nyc", 185, "pink", 10),
    ("pause the podcast", "en+m7", 135, "none", None),
    ("add eggs and bread to the shopping list", "en-gb", 200, "white", 10),
    ("turn the volume up a little", "en-us", 190, "brown", 20),
    # questions
    ("what is the weather like tomorrow in Berlin", "en-gb-x-rp", 160, "none", None),
    ("how long will it take to drive to Manchester", "en+f3", 170, "brown", 10),
    ("what time is it in Tokyo right now", "en-us", 145, "none", None),
    ("what is seven times eight", "en+m3", 130, "pink", 20),
    ("when does the next train to Paris leave", "en-gb-x-gbclan", 165, "white", 10),
    ("who wrote the origin of species", "en+f2", 150, "none", None),
    # dictation, numbers, names
    ("the quick brown fox jumps over the lazy dog", "en-us", 175, "none", None),
    ("please send the report to Maria before Friday", "en-gb", 165, "pink", 10),
    ("my phone number is five five five, one two three four", "en+f3", 160, "none", None),
    ("the meeting has been moved to three fifteen on Tuesday", "en-gb-x-gbcwmd", 180, "none", None),
    ("Doctor Johnson will see you in room four hundred and twelve", "en-us+f4", 170, "brown", 10),
    ("it was the best of times, it was the worst of times", "en-gb-x-rp", 145, "none", None),
    ("in nineteen sixty nine, two astronauts walked on the moon", "en+m3", 190, "white", 10),
    ("we need twelve chairs and three tables for the party", "en-029", 155, "none", None),
    ("hello computer, good morning", "en+f2", 140, "none", None),
]


def log(msg):
    print(f"make_clips: {msg}", file=sys.stderr, flush=True)


def make_clip(i, text, voice, wpm, kind, snr, tmp):
    speech = trim(speak(text, voice, wpm, tmp))
    speech = speech * (SPEECH_PEAK / np.max(np.abs(speech)))
    p_speech = float(np.mean(speech * speech))
    pad = np.zeros(int(round(PAD_S * RATE)))
    x = np.concatenate([pad, speech, pad])
    seed = None
    if kind != "none":
        seed = BASE_SEED + i
        x = x + noise(kind, x.size, seed) * np.sqrt(p_speech / 10.0 ** (snr / 10.0))
    peak = np.max(np.abs(x))
    if peak > MAX_PEAK:
        x = x * (MAX_PEAK / peak)
    return to_pcm16(x), seed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "clips"))
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    version = espeak_version()
    entries = []
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        for i, (text, voice, wpm, kind, snr) in enumerate(CLIPS, start=1):
            name = f"{i:02d}_{slug(text)}.wav"
            pcm, seed = make_clip(i, text, voice, wpm, kind, snr, tmp)
            dur = pcm.size / RATE
            if not MIN_S <= dur <= MAX_S:
                sys.exit(f"make_clips: {name} lasts {dur:.2f} s, outside {MIN_S}-{MAX_S} s")
            tmpwav = tmp / name
            write_wav(tmpwav, pcm)
            changed = write_if_changed(out / name, tmpwav.read_bytes())
            log(f"{name}: {dur:.2f} s, {voice}, {wpm} wpm, noise {kind}"
                + (f" {snr} dB" if snr is not None else "") + (" (written)" if changed else ""))
            entries.append({
                "file": name,
                "text": text,
                "voice": voice,
                "speed_wpm": wpm,
                "noise": kind,
                "snr_db": snr,
                "noise_seed": seed,
                "duration_s": round(dur, 4),
            })

    manifest = {
        "generator": "scripts/data/make_clips.py",
        "tts": version,
        "sample_rate": RATE,
        "format": "WAV, PCM 16-bit signed, mono",
        "padding_s": PAD_S,
        "snr_definition": "10*log10(mean square of the trimmed speech, padding excluded / "
                          "mean square of the noise over the whole clip)",
        "noise_kinds": {"none": "clean", "white": "flat spectrum",
                        "pink": "power ~ 1/f", "brown": "power ~ 1/f^2"},
        "clips": entries,
    }
    data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    write_if_changed(out / "clips.json", data)
    known = {e["file"] for e in entries} | {"clips.json"}
    for p in sorted(out.iterdir()):
        if p.suffix == ".wav" and p.name not in known:
            log(f"removing stale {p.name}")
            p.unlink()
    total = sum(p.stat().st_size for p in out.iterdir())
    log(f"{len(entries)} clips, {total / 1e6:.2f} MB in {out}")


if __name__ == "__main__":
    main()
