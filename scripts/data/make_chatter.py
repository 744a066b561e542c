#!/usr/bin/env python3
"""Generate long recordings of talk that is not a command, for the wake phrase's false
activations per hour (scripts/bench/bench_wake.py): into data/chatter/ (git-ignored).

Podcast-like conversation: turns of two to four sentences, spoken one after the other by
alternating voices with pauses of 0.3-1.5 s between turns (and the voices' own pauses inside
them), over a faint noise floor (-60 dBFS RMS, a quiet room). The sentences come from
templates filled from word lists with a fixed seed, so there are thousands of different ones;
many use the words commands are made of (lights, the kitchen, a timer, music, the
temperature, "turn", "set", "hey", "computer"), because a television says such words too, and
that is where false activations come from.

  flite.wav    flite's voices (slt, rms, awb, kal16 at a few speeds)
  espeak.wav   espeak-ng's voices (US, British, Caribbean, Scottish, female and male variants)

Each is --minutes long (default 32: the two together make at least an hour). manifest.json
lists the turns: {"file", "text", "voice", "start_s", "end_s"}. Everything is deterministic
(fixed seeds, sox repeatable mode; see scripts/data/speech.py). Synthesis runs one process per
turn; run it with `nice -n 10` on a shared machine.

Usage: scripts/data/make_chatter.py [--out data/chatter] [--minutes 32] [--voices flite,espeak]
"""
import argparse
import json
import pathlib
import tempfile
import wave

from speech import RATE, ROOT, noise, np, speak, speak_flite, to_pcm16, trim

SEED = 20261206
SPEECH_PEAK = 0.5
NOISE_RMS = 10 ** (-60 / 20)
PAUSE_MIN_S, PAUSE_MAX_S = 0.3, 1.5

VOICES = {
    "flite": [("flite", "slt", 1.0), ("flite", "rms", 0.95), ("flite", "awb", 1.05),
              ("flite", "kal16", 1.0), ("flite", "slt", 1.1), ("flite", "rms", 1.05)],
    "espeak": [("espeak", "en-us", 165), ("espeak", "en-gb", 155), ("espeak", "en+f3", 150),
               ("espeak", "en+m3", 145), ("espeak", "en-029", 160),
               ("espeak", "en-gb-scotland", 150), ("espeak", "en-us+m7", 160),
               ("espeak", "en+f4", 150)],
}

WORDS = {
    "person": ["my sister", "our neighbour", "a friend of mine", "my uncle", "the host",
               "a listener", "my colleague", "the guest last week", "my dad", "the producer"],
    "place": ["the kitchen", "the living room", "the office", "the garage", "the garden",
              "the studio", "the bedroom", "the hallway", "the basement", "the car"],
    "thing": ["the lights", "the music", "the timer", "the heating", "the computer",
              "the television", "the radio", "the coffee machine", "the thermostat",
              "the front door", "the blinds", "the speaker", "the phone", "the oven"],
    "topic": ["climate change", "the football season", "home automation", "the housing market",
              "remote work", "space travel", "gardening", "video games", "electric cars",
              "the local election", "cooking on a budget", "learning languages",
              "artificial intelligence", "old movies", "running a marathon"],
    "time": ["last night", "this morning", "yesterday", "every Sunday", "a few years ago",
             "right before the show", "after dinner", "in the middle of the night",
             "on the way home", "last summer"],
    "number": ["two", "five", "ten", "fifteen", "twenty", "thirty", "forty five", "a hundred",
               "three", "seven"],
    "unit": ["minutes", "hours", "days", "weeks", "percent", "degrees", "euros", "people"],
    "feeling": ["surprised", "annoyed", "delighted", "confused", "tired", "nervous",
                "impressed", "relieved"],
    "verb": ["turned on", "turned off", "switched off", "set up", "fixed", "broke",
             "forgot about", "talked about", "played with", "paused", "changed"],
    "adj": ["strange", "funny", "brilliant", "awkward", "complicated", "simple", "loud",
            "quiet", "expensive", "cheap"],
}

TEMPLATES = [
    "So {person} {verb} {thing} {time}, and honestly I was {feeling}.",
    "Welcome back to the show, today we are talking about {topic}.",
    "I think {topic} is a lot more {adj} than people expect.",
    "You know, {person} told me that {thing} in {place} never works properly.",
    "We spent about {number} {unit} arguing about {topic} {time}.",
    "Hey, that reminds me of the time {person} {verb} {thing} by accident.",
    "If you ask me, the whole thing was {adj}, but that is just my opinion.",
    "Let me turn to our guest, who knows much more about {topic} than I do.",
    "The funny part is that {thing} was in {place} the whole time.",
    "I set a goal of {number} {unit} a week, and of course I failed after a month.",
    "Okay, so what did you think when {person} {verb} {thing}?",
    "My computer decided to restart itself {time}, right in the middle of a call.",
    "We should play the clip where {person} explains {topic}, it is {adj}.",
    "There were maybe {number} {unit} of silence before anyone said a word.",
    "Honestly, the temperature in {place} was {adj} {time}.",
    "Stop me if you have heard this one, but {person} {verb} {thing} twice in one day.",
    "Next week we will have someone on who works in {topic}.",
    "I was {feeling} when I saw the price, it went up by {number} {unit}.",
    "Can you imagine running {thing} from {place} with nothing but your voice?",
    "Turn the clock back {number} years and nobody cared about {topic} at all.",
    "That is a great question, and I think the answer depends on {topic}.",
    "Anyway, {person} left {thing} on all night in {place}.",
    "Some listeners wrote in to say that {topic} is {adj}, and they have a point.",
    "The lights went out in {place} {time}, so we recorded this by candle light.",
    "We are going to take a short break, and when we come back, more about {topic}.",
    "It took {number} {unit} to get {thing} working again.",
    "I told {person} to check {thing}, but nobody listened.",
    "Right, where were we, oh yes, {topic}.",
    "Music was playing in {place} and {person} was {feeling}.",
    "What time is it where you are, because here it is already late.",
    "Thanks for listening, and thanks to {person} for the idea about {topic}.",
    "Set aside {number} {unit} for that, it is worth it.",
]


def sentence(rng):
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    words = {key: values[int(rng.integers(len(values)))] for key, values in WORDS.items()}
    text = template.format(**words)
    return text[0].upper() + text[1:]


def synthesize(text, voice, tmp):
    synth, name, pace = voice
    x = (speak_flite(text, name, pace, tmp) if synth == "flite"
         else speak(text, name, pace, tmp))
    x = trim(x)
    return x * (SPEECH_PEAK / np.max(np.abs(x)))


def make(path, voices, minutes, rng, tmp):
    """Writes turns into path until it is `minutes` long; returns the manifest entries."""
    manifest = []
    target = int(minutes * 60 * RATE)
    written = 0
    noise_seed = int(rng.integers(1 << 31))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)

        def put(x):
            nonlocal written, noise_seed
            x = x + NOISE_RMS * noise("white", len(x), noise_seed)
            noise_seed += 1
            w.writeframes(to_pcm16(x).tobytes())
            written += len(x)

        put(np.zeros(RATE))
        turn = 0
        while written < target:
            voice = voices[turn % len(voices)]
            text = " ".join(sentence(rng) for _ in range(int(rng.integers(2, 5))))
            x = synthesize(text, voice, tmp)
            manifest.append({"file": path.name, "text": text,
                             "voice": ":".join(str(v) for v in voice),
                             "start_s": written / RATE, "end_s": (written + len(x)) / RATE})
            put(x)
            put(np.zeros(int(rng.uniform(PAUSE_MIN_S, PAUSE_MAX_S) * RATE)))
            turn += 1
        put(np.zeros(2 * RATE))
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "data" / "chatter"))
    ap.add_argument("--minutes", type=float, default=32.0, help="length of each file")
    ap.add_argument("--voices", default="flite,espeak",
                    help="comma-separated: flite, espeak (default both)")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for index, name in enumerate(args.voices.split(",")):
        if name not in VOICES:
            raise SystemExit(f"--voices: unknown `{name}`, expected flite or espeak")
        rng = np.random.Generator(np.random.PCG64(SEED + index))
        with tempfile.TemporaryDirectory() as tmp:
            manifest += make(out / f"{name}.wav", VOICES[name], args.minutes, rng, tmp)
        print(f"{out / (name + '.wav')}: {args.minutes} min")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
