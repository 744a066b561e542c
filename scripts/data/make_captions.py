#!/usr/bin/env python3
"""Generate long recordings for the live-captions test and benchmark into data/captions/.

A recording is a timeline of spoken paragraphs (two to four sentences each, so the voices' own
sentence pauses occur inside them), the real recording ../shared/data/jfk.wav among them,
separated by pauses, with a faint white noise floor over the whole file (-60 dBFS RMS: a quiet
room, and not digital silence, so the captioner's voice activity gate and not the
transcriber's silence gate has to skip the pauses). One pause is long (8 s) so that a caption
window holds silence only.

The paragraphs are spoken by flite's voices (four speakers, US and Scottish, at a few speeds):
the captions must agree with the offline transcript of the same audio, and that measures the
streaming only where the model hears the words the same in any context. espeak-ng's formant
voices are ambiguous enough to tiny.en that a word's guess changes with the words around it
(README "Live captions" gives those numbers too: `--voices espeak`).

  test.wav   about 70 s: jfk, then the first paragraphs (tests/it/captions.rs)
  long.wav   with --minutes M (removed without): at least M minutes: jfk, the paragraphs in a
             shuffled order with jfk again half way (about 4 minutes), then more rounds with
             the voices turned on if M asks for more (scripts/bench/bench_captions.py,
             tests/it/captions.rs). No paragraph is said twice within a round: a decoder that
             hears a sentence it has just written in its prompt tends to skip it, and people
             rarely repeat a paragraph word for word.

manifest.json lists each file's pieces: {"text", "voice", "start_s", "end_s"}. Everything is
deterministic (fixed seeds, sox repeatable mode; see scripts/data/speech.py), so a rerun writes
identical files on the same machine and package versions.

Usage: scripts/data/make_captions.py [--out data/captions] [--minutes M] [--voices flite|espeak]
"""
import argparse
import json
import pathlib
import subprocess
import tempfile
import wave

from speech import (RATE, ROOT, espeak_version, noise, np, speak, speak_flite, to_pcm16, trim,
                    write_if_changed)

SEED = 20261127
SPEECH_PEAK = 0.5
NOISE_RMS = 10 ** (-60 / 20)
LEAD_S, TRAIL_S = 1.0, 2.0
PAUSE_MIN_S, PAUSE_MAX_S = 0.4, 2.5
LONG_PAUSE_S = 8.0
# Paragraphs in test.wav: enough for several sentence ends, windows and one long pause,
# few enough that the test stays quick.
TEST_PARAGRAPHS = 6
JFK = ROOT.parent / "shared" / "data" / "jfk.wav"

PARAGRAPHS = [
    "The weather service expects heavy rain over the hills tonight. Drivers should leave "
    "early and keep their lights on.",
    "Our library opens at nine on weekdays. On Sundays it stays closed, but the reading "
    "garden is open to everyone.",
    "Please bring a warm jacket and sturdy boots. The path along the river is muddy after "
    "a storm. We will meet at the old bridge.",
    "The committee approved the new budget yesterday. Most of the money goes to schools and "
    "public transport.",
    "She opened the window and listened to the birds. Somewhere far away a train was "
    "crossing the valley.",
    "Remember to water the tomatoes before you leave. The small ones in the kitchen need "
    "less water than the big ones outside.",
    "The museum has a new exhibition about ancient ships. Visitors can climb aboard a "
    "wooden boat and learn how sailors found their way at night.",
    "Lunch will be served in the main hall. After lunch the guided tour starts at the "
    "north entrance.",
    "My brother moved to a small village by the sea. He writes that the winters are quiet "
    "and the summers are full of tourists.",
    "The engineers tested the bridge for three days. They found no cracks, and the road "
    "will open again on Monday.",
    "Good morning, everyone. Today we talk about how plants turn sunlight into food. Open "
    "your books at the chapter on leaves.",
    "The market sells fresh bread, cheese and fruit. Come early, because the best apples "
    "are gone before noon.",
    "The train to the coast leaves every hour from platform four. On holidays it is often "
    "full, so buy your ticket a day before.",
    "Our neighbours planted an apple tree in their garden. In autumn they share the fruit "
    "with all the children on the street.",
    "The doctor says that a short walk after dinner helps you sleep. Try it for a week and "
    "see how you feel.",
    "A small bakery opened next to the post office. Its owner gets up at four every morning "
    "to bake the bread.",
    "The football match was cancelled because of the snow. The players will try again next "
    "Saturday if the field is dry.",
    "My grandmother kept every letter she ever received. We found them in a wooden box under "
    "her bed.",
    "The city wants to build a new park near the harbour. People can send their ideas for it "
    "until the end of the month.",
    "Turn left at the church and follow the road up the hill. The farm is the last house on "
    "the right.",
    "The students built a little robot that can draw circles. Next year they want to teach "
    "it to write its name.",
    "Fresh snow fell in the mountains last night. The ski lifts open at eight, and the "
    "roads have already been cleared.",
    "He forgot his umbrella on the bus again. The driver kept it for him until the evening.",
    "The concert in the square starts after sunset. Bring a blanket, because the stone "
    "steps get cold at night.",
]
# (synthesizer, voice, pace): flite's duration stretch (> 1 slower) or espeak's words a
# minute. A paragraph's voice turns on by one each round of long.wav.
VOICES = {
    "flite": [("flite", "slt", 1.0), ("flite", "rms", 0.95), ("flite", "awb", 1.1),
              ("flite", "kal16", 1.0), ("flite", "slt", 1.15), ("flite", "rms", 1.1)],
    "espeak": [("espeak", "en-us", 160), ("espeak", "en-gb", 150), ("espeak", "en+f3", 145),
               ("espeak", "en+m3", 135), ("espeak", "en+f4", 140), ("espeak", "en-us+m7", 155),
               ("espeak", "en-gb-x-rp", 135), ("espeak", "en-029", 160),
               ("espeak", "en-gb-scotland", 145), ("espeak", "en-us-nyc", 150)],
}


def read_jfk():
    with wave.open(str(JFK), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float64) / 32768.0


class Speaker:
    """Speaks each (paragraph, voice) once."""

    def __init__(self, tmp):
        self.tmp, self.cache = tmp, {}

    def piece(self, index, voice):
        key = (index, voice)
        if key not in self.cache:
            text = PARAGRAPHS[index]
            synth, name, pace = voice
            x = (speak_flite(text, name, pace, self.tmp) if synth == "flite"
                 else speak(text, name, pace, self.tmp))
            x = trim(x)
            self.cache[key] = {"text": text, "voice": f"{synth}:{name}:{pace}",
                               "audio": x * (SPEECH_PEAK / np.max(np.abs(x)))}
        return self.cache[key]


def build(pieces, rng, long_pause_after):
    """The timeline: lead, pieces with random pauses (one long pause), trail; plus noise."""
    parts, manifest = [np.zeros(int(LEAD_S * RATE))], []
    t = len(parts[0])
    for i, piece in enumerate(pieces):
        manifest.append({"text": piece["text"], "voice": piece["voice"],
                         "start_s": t / RATE, "end_s": (t + len(piece["audio"])) / RATE})
        parts.append(piece["audio"])
        t += len(piece["audio"])
        if i + 1 < len(pieces):
            pause = LONG_PAUSE_S if i == long_pause_after else rng.uniform(PAUSE_MIN_S,
                                                                          PAUSE_MAX_S)
            parts.append(np.zeros(int(pause * RATE)))
            t += len(parts[-1])
    parts.append(np.zeros(int(TRAIL_S * RATE)))
    x = np.concatenate(parts)
    x += NOISE_RMS * noise("white", len(x), int(rng.integers(1 << 31)))
    return x, manifest


def write(path, x):
    import io
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(to_pcm16(x).tobytes())
    return write_if_changed(path, buf.getvalue())


def synthesizer_version(voices):
    """The synthesizer's version line, recorded in the manifest."""
    if voices == "espeak":
        return espeak_version()
    # flite --version prints its banner and exits with status 1.
    out = subprocess.run(["flite", "--version"], stdout=subprocess.PIPE, text=True).stdout
    return next(line.strip() for line in out.splitlines() if "version" in line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "data" / "captions"))
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="also write long.wav, at least this long")
    ap.add_argument("--voices", choices=sorted(VOICES), default="flite",
                    help="the synthesizer the paragraphs are spoken with (default flite)")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jfk = {"text": "And so my fellow Americans, ask not what your country can do for you, "
                   "ask what you can do for your country.",
           "voice": "jfk.wav", "audio": read_jfk()}
    voices = VOICES[args.voices]
    rng = np.random.Generator(np.random.PCG64(SEED))
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        speaker = Speaker(tmp)
        test = [jfk] + [speaker.piece(i, voices[i % len(voices)])
                        for i in range(TEST_PARAGRAPHS)]
        x, pieces = build(test, rng, long_pause_after=len(test) // 2)
        write(out / "test.wav", x)
        files["test"] = {"file": "test.wav", "seconds": len(x) / RATE, "pieces": pieces}
        if args.minutes > 0:
            rounds, total, r = [], 0.0, 0
            while total < args.minutes * 60:
                order = [speaker.piece(int(i), voices[(int(i) + r) % len(voices)])
                         for i in rng.permutation(len(PARAGRAPHS))]
                half = len(order) // 2
                rounds += [jfk] + order[:half] + [jfk] + order[half:]
                total += sum(len(p["audio"]) for p in [jfk] + order) / RATE + 1.5 * len(order)
                r += 1
            x, pieces = build(rounds, rng, long_pause_after=len(rounds) // 2)
            write(out / "long.wav", x)
            files["long"] = {"file": "long.wav", "seconds": len(x) / RATE, "pieces": pieces}
        elif (out / "long.wav").exists():
            (out / "long.wav").unlink()  # the folder matches the manifest
    manifest = {"rate": RATE, "voices": synthesizer_version(args.voices), "files": files}
    write_if_changed(out / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    for name, f in files.items():
        print(f"{name}: {f['file']} {f['seconds']:.1f} s, {len(f['pieces'])} pieces")


if __name__ == "__main__":
    main()
