#!/usr/bin/env python3
"""Generate long recordings for the live-captions test and benchmark into data/captions/.

A recording is a timeline of spoken paragraphs (espeak-ng, several voices and speeds, two to
four sentences each, so espeak's own sentence pauses occur inside them), the real recording
../shared/data/jfk.wav among them, separated by pauses, with a faint white noise floor over
the whole file (-60 dBFS RMS: a quiet room, and not digital silence, so the captioner's voice
activity gate and not the transcriber's silence gate has to skip the pauses). One pause is
long (8 s) so that a caption window holds silence only.

  test.wav   about 65 s: jfk, then the first paragraphs (tests/captions.rs)
  long.wav   with --minutes M (removed without): at least M minutes of the paragraphs in shuffled rounds
             with jfk at the start of each round (scripts/bench_captions.py)

manifest.json lists each file's pieces: {"text", "voice", "wpm", "start_s", "end_s"}.
Everything is deterministic (fixed seeds, sox repeatable mode; see scripts/speech.py), so a
rerun writes identical files on the same machine and package versions.

Usage: scripts/make_captions.py [--out data/captions] [--minutes M]
"""
import argparse
import json
import pathlib
import tempfile
import wave

from speech import RATE, ROOT, espeak_version, noise, np, speak, to_pcm16, trim, write_if_changed

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

# (paragraph, espeak-ng voice, words per minute)
PARAGRAPHS = [
    ("The weather service expects heavy rain over the hills tonight. Drivers should leave "
     "early and keep their lights on.", "en-us", 160),
    ("Our library opens at nine on weekdays. On Sundays it stays closed, but the reading "
     "garden is open to everyone.", "en-gb", 150),
    ("Please bring a warm jacket and sturdy boots. The path along the river is muddy after "
     "a storm. We will meet at the old bridge.", "en+f3", 145),
    ("The committee approved the new budget yesterday. Most of the money goes to schools and "
     "public transport.", "en+m3", 135),
    ("She opened the window and listened to the birds. Somewhere far away a train was "
     "crossing the valley.", "en+f4", 140),
    ("Remember to water the tomatoes before you leave. The small ones in the kitchen need "
     "less water than the big ones outside.", "en-us+m7", 155),
    ("The museum has a new exhibition about ancient ships. Visitors can climb aboard a "
     "wooden boat and learn how sailors found their way at night.", "en-gb-x-rp", 135),
    ("Lunch will be served in the main hall. After lunch the guided tour starts at the "
     "north entrance.", "en-029", 160),
    ("My brother moved to a small village by the sea. He writes that the winters are quiet "
     "and the summers are full of tourists.", "en-gb-scotland", 145),
    ("The engineers tested the bridge for three days. They found no cracks, and the road "
     "will open again on Monday.", "en-us-nyc", 150),
    ("Good morning, everyone. Today we talk about how plants turn sunlight into food. Open "
     "your books at the chapter on leaves.", "en+f2", 150),
    ("The market sells fresh bread, cheese and fruit. Come early, because the best apples "
     "are gone before noon.", "en-gb-x-gbclan", 165),
]


def read_jfk():
    with wave.open(str(JFK), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float64) / 32768.0


def spoken_paragraphs(tmp):
    out = []
    for text, voice, wpm in PARAGRAPHS:
        x = trim(speak(text, voice, wpm, tmp))
        out.append({"text": text, "voice": voice, "wpm": wpm,
                    "audio": x * (SPEECH_PEAK / np.max(np.abs(x)))})
    return out


def build(pieces, rng, long_pause_after):
    """The timeline: lead, pieces with random pauses (one long pause), trail; plus noise."""
    parts, manifest = [np.zeros(int(LEAD_S * RATE))], []
    t = len(parts[0])
    for i, piece in enumerate(pieces):
        manifest.append({"text": piece["text"], "voice": piece["voice"], "wpm": piece["wpm"],
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "data" / "captions"))
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="also write long.wav, at least this long")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jfk = {"text": "And so my fellow Americans, ask not what your country can do for you, "
                   "ask what you can do for your country.",
           "voice": "jfk.wav", "wpm": None, "audio": read_jfk()}
    with tempfile.TemporaryDirectory() as tmp:
        paragraphs = spoken_paragraphs(tmp)
    rng = np.random.Generator(np.random.PCG64(SEED))
    files = {}
    test = [jfk] + paragraphs[:TEST_PARAGRAPHS]
    x, pieces = build(test, rng, long_pause_after=len(test) // 2)
    write(out / "test.wav", x)
    files["test"] = {"file": "test.wav", "seconds": len(x) / RATE, "pieces": pieces}
    if args.minutes > 0:
        rounds, total = [], 0.0
        while total < args.minutes * 60:
            order = [paragraphs[i] for i in rng.permutation(len(paragraphs))]
            rounds += [jfk] + order
            total += sum(len(p["audio"]) for p in [jfk] + order) / RATE + 1.5 * len(order)
        x, pieces = build(rounds, rng, long_pause_after=len(rounds) // 2)
        write(out / "long.wav", x)
        files["long"] = {"file": "long.wav", "seconds": len(x) / RATE, "pieces": pieces}
    elif (out / "long.wav").exists():
        (out / "long.wav").unlink()  # the folder matches the manifest
    manifest = {"rate": RATE, "espeak": espeak_version(), "files": files}
    write_if_changed(out / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    for name, f in files.items():
        print(f"{name}: {f['file']} {f['seconds']:.1f} s, {len(f['pieces'])} pieces")


if __name__ == "__main__":
    main()
