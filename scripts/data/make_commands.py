#!/usr/bin/env python3
"""Generate the voice-command accuracy benchmark deterministically into data/commands/ (--out).

Positives: COMMANDS sentences sampled from the example grammars by `voxd grammar sample`
(release build; seeded, so the same sentences every run), each with the intent and slots it
must be recognised as. Each is spoken by espeak-ng with one of 12 voices at 130-190 wpm,
trimmed, scaled to a peak of 0.5, padded with 0.3-0.8 s of silence on each side (drawn
independently), and mixed with white, pink or brown noise at 24, 18, 12 or 6 dB SNR (a
quarter of the commands at each, every voice at every SNR; SNR over the speech samples,
noise over the whole clip).

Negatives (at least 100), which must all be refused:
  ordinary   everyday sentences and questions, noise as the positives
  near_miss  phrasings close to the grammar's with words it does not have, noise as above
             (a sentence of either list that the grammars match is left out, and said so:
             the examples grow)
  silence    digital silence and near-silent noise (-70 to -50 dBFS)
  noise      white, pink and brown noise alone at several levels
  burst      cough-like bursts: a few short band-passed noise bursts with sharp attacks
  jfk        ../shared/data/jfk.wav (real speech, 11 s)

manifest.json lists every clip: {"file", "kind": "command"|"negative", "category", "text",
"intent", "slots", "voice", "wpm", "noise", "snr_db", "duration_s"}. Needs espeak-ng, sox,
numpy (scripts/data/speech.py re-runs this with .venv's python when needed) and
`cargo build --release`.
"""
import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

from speech import RATE, ROOT, noise, speak, to_pcm16, trim, write_wav, np

OUT = ROOT / "data" / "commands"
GRAMMARS = sorted((ROOT / "grammars").glob("*.toml"))
VOXD = ROOT / "target" / "release" / "voxd"
JFK = ROOT.parent / "shared" / "data" / "jfk.wav"
COMMANDS = 320
SEED = 4
SNRS = [24, 18, 12, 6]
NOISES = ["white", "pink", "brown"]
VOICES = ["en-us", "en-gb", "en+f2", "en+f3", "en+f4", "en+m3", "en-us+m7", "en-029",
          "en-gb-scotland", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan"]
WPMS = [130, 150, 170, 190]
SPEECH_PEAK = 0.5
MAX_PEAK = 0.95

ORDINARY = [
    "what is the weather like tomorrow", "I think we should leave at six",
    "can you pass me the salt please", "the meeting has been moved to Tuesday",
    "my brother lives in a small town near the coast", "did you remember to feed the cat",
    "we need to buy more coffee", "how was your day at work", "let's go for a walk later",
    "the train was twenty minutes late this morning", "I don't know what you mean",
    "she said she would call back after lunch", "this book is really interesting",
    "where did I leave my keys", "the children are playing in the garden",
    "could you help me with this box", "it is going to rain all weekend",
    "I had pasta for dinner yesterday", "the shop closes at nine on Sundays",
    "thank you very much for coming", "have you seen my glasses anywhere",
    "we watched a film about penguins", "the printer is out of paper again",
    "happy birthday to you", "okay see you tomorrow then", "that sounds like a good idea",
    "the dog needs a bath", "my phone battery is almost empty",
    "who is coming to the party on Saturday", "I will be home in ten minutes",
    "hello how are you", "yes", "no thanks", "hmm let me think",
]
NEAR_MISS = [
    "turn on the garden lights", "turn on the kitchen lights please",
    "switch off the porch light", "open the garage door", "close the bedroom window",
    "set the kitchen lights to blue", "dim the lights a bit", "make it warmer in here",
    "set the oven to two hundred degrees", "play some jazz music", "play the radio",
    "stop the podcast", "skip this advert", "mute the volume", "turn the television on",
    "set an alarm for seven", "set a timer for the pasta", "set a reminder for ten minutes",
    "cancel my meeting", "how much time is left on the oven", "what time is it",
    "lock the front door", "turn on the kitchen fan", "start the dishwasher",
    "turn up the heating in the bedroom", "switch the hall lights to green",
    "tell me a joke", "volume", "timer", "the lights", "next episode", "previous channel",
    "set the thermostat", "turn off", "louder please everyone",
]


def log(msg):
    print(f"make_commands: {msg}", file=sys.stderr, flush=True)


def in_grammar(text):
    """Whether the example grammars match `text` (then it is no negative)."""
    out = subprocess.run([str(VOXD), "grammar", "match", *map(str, GRAMMARS), text], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)["intent"] is not None


def samples():
    """The positive sentences, from the grammars through `voxd grammar sample`."""
    if not VOXD.exists():
        sys.exit(f"make_commands: {VOXD} missing; run `cargo build --release` first")
    out = subprocess.run(
        [str(VOXD), "grammar", "sample", *map(str, GRAMMARS), "--count", str(COMMANDS),
         "--seed", str(SEED)], check=True, stdout=subprocess.PIPE, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def spoken(text, voice, wpm, rng, tmp):
    """The text spoken, trimmed, at SPEECH_PEAK, with 0.3-0.8 s of silence on each side."""
    speech = trim(speak(text, voice, wpm, tmp))
    speech = speech * (SPEECH_PEAK / np.max(np.abs(speech)))
    before, after = (np.zeros(int(rng.uniform(0.3, 0.8) * RATE)) for _ in range(2))
    return np.concatenate([before, speech, after]), float(np.mean(speech * speech))


def with_noise(x, p_speech, kind, snr, seed):
    return x + noise(kind, x.size, seed) * np.sqrt(p_speech / 10.0 ** (snr / 10.0))


def bursts(rng, seed):
    """Cough-like: 1-3 bursts of band-passed noise (0.1-0.3 s, sharp attack, fast decay)."""
    total = np.zeros(int(rng.uniform(1.0, 2.0) * RATE))
    for k in range(int(rng.integers(1, 4))):
        n = int(rng.uniform(0.1, 0.3) * RATE)
        burst = noise(str(rng.choice(NOISES)), n, seed * 10 + k)
        spec = np.fft.rfft(burst)
        f = np.fft.rfftfreq(n, 1.0 / RATE)
        centre = rng.uniform(300, 1500)
        spec *= np.exp(-0.5 * ((f - centre) / (centre * 0.8)) ** 2)
        burst = np.fft.irfft(spec, n)
        t = np.arange(n) / RATE
        burst *= (1 - np.exp(-t / 0.005)) * np.exp(-t / rng.uniform(0.04, 0.12))
        start = int(rng.uniform(0.1, 0.6) * total.size)
        end = min(total.size, start + n)
        total[start:end] += burst[: end - start]
    return total * (rng.uniform(0.2, 0.8) / np.max(np.abs(total)))


def finish(x):
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak > MAX_PEAK:
        x = x * (MAX_PEAK / peak)
    return to_pcm16(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help=f"default {OUT}")
    out_dir = ap.parse_args().out
    rng = np.random.Generator(np.random.PCG64(SEED))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    clips = []

    def add(pcm, **entry):
        name = f"{len(clips):03d}_{entry['category']}.wav"
        write_wav(out_dir / name, pcm)
        clips.append({"file": name, "duration_s": round(pcm.size / RATE, 3), **entry})

    with tempfile.TemporaryDirectory() as tmp:
        for i, s in enumerate(samples()):
            # Voice and SNR vary independently (every voice at every SNR).
            voice, snr = VOICES[i % len(VOICES)], SNRS[(i // len(VOICES)) % len(SNRS)]
            wpm, kind = int(rng.choice(WPMS)), str(rng.choice(NOISES))
            x, p = spoken(s["text"], voice, wpm, rng, tmp)
            add(finish(with_noise(x, p, kind, snr, SEED * 1000 + i)), kind="command",
                category="command", text=s["text"], intent=s["intent"], slots=s["slots"],
                voice=voice, wpm=wpm, noise=kind, snr_db=snr)
        log(f"{len(clips)} commands")
        for category, texts in [("ordinary", ORDINARY), ("near_miss", NEAR_MISS)]:
            for i, text in enumerate(texts):
                if in_grammar(text):
                    log(f"{category} {text!r} left out: the grammars match it")
                    continue
                voice, snr = VOICES[(i + 5) % len(VOICES)], SNRS[i % len(SNRS)]
                wpm, kind = int(rng.choice(WPMS)), str(rng.choice(NOISES))
                x, p = spoken(text, voice, wpm, rng, tmp)
                add(finish(with_noise(x, p, kind, snr, SEED * 2000 + len(clips))),
                    kind="negative", category=category, text=text, voice=voice, wpm=wpm,
                    noise=kind, snr_db=snr)
        for i in range(10):
            n = int(rng.uniform(1.0, 3.0) * RATE)
            level = 0.0 if i < 3 else 10 ** (rng.uniform(-70, -50) / 20)
            x = noise(NOISES[i % 3], n, SEED * 3000 + i) * level
            add(finish(x), kind="negative", category="silence", noise=NOISES[i % 3],
                level_dbfs=None if level == 0 else round(20 * np.log10(level), 1))
        for i in range(18):
            n = int(rng.uniform(1.0, 3.0) * RATE)
            level = 10 ** (rng.uniform(-40, -10) / 20)
            add(finish(noise(NOISES[i % 3], n, SEED * 4000 + i) * level), kind="negative",
                category="noise", noise=NOISES[i % 3],
                level_dbfs=round(20 * np.log10(level), 1))
        for i in range(15):
            add(finish(bursts(rng, SEED * 5000 + i)), kind="negative", category="burst")
    shutil.copy(JFK, out_dir / "jfk.wav")
    clips.append({"file": "jfk.wav", "kind": "negative", "category": "jfk",
                  "text": "And so my fellow Americans ..."})
    negatives = sum(c["kind"] == "negative" for c in clips)
    (out_dir / "manifest.json").write_text(json.dumps({"generator": "scripts/data/make_commands.py",
                                                   "clips": clips}, indent=1))
    log(f"{len(clips) - negatives} commands, {negatives} negatives in {out_dir}")


if __name__ == "__main__":
    main()
