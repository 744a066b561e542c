#!/usr/bin/env python3
"""Generate the audio front end's segmentation test set deterministically into data/segmentation/.

One timeline of 28 spoken voice commands (espeak-ng, 12 voices, 120-200 wpm, each 1-4 s long)
placed one after the other: 1.0 s of silence first, a pause drawn uniformly from 0.5-3.0 s
between consecutive commands (one pause is exactly 0.5 s and one exactly 3.0 s, so both extremes
occur), 2.0 s of silence last. The same timeline is written in five versions that differ only
in the noise added:

  clean     no noise
  pink20    pink noise (power ~ 1/f) at 20 dB SNR
  pink10    the same pink noise at 10 dB SNR
  pink6     the same pink noise at 6 dB SNR
  mixed10   a mix at 10 dB SNR: babble (4 overlapping espeak-ng talkers saying other sentences)
            50 %, brown noise 25 %, white noise 25 % of the noise power

Each version is written twice: NAME_16k.wav (16 kHz mono, PCM 16-bit) and NAME_48k_stereo.wav
(48 kHz, 2 channels, PCM 16-bit; resampled from the same float mix by sox; the right channel is
the left times 0.9 so that a test can tell the channels apart). manifest.json describes them:

  {"rate": 16000,                              the timeline of onset_s/offset_s
   "files": {NAME: {"16k": "NAME_16k.wav", "48k_stereo": "NAME_48k_stereo.wav",
                    "noise": "none"|"pink"|"mixed", "snr_db": null|20|10|6, ...}},
   "commands": [{"text", "voice", "wpm", "onset_s", "offset_s",
                 "onset_sample", "offset_sample"}, ...],
   ...}

File paths are relative to the manifest's folder. The commands (and their onsets) are the same
for every version, since only the noise differs.

Onset and offset of a command: its speech is cut into 10 ms frames (160 samples at 16 kHz,
starting at the first sample of the trimmed espeak-ng output, the last frame possibly short);
onset is the first sample of the first frame whose RMS exceeds 1 % of the command's peak
sample magnitude, offset is the last sample of the last such frame. Both are measured on the
clean speech and given as a 16 kHz sample index (onset_sample, offset_sample, inclusive) and in
seconds (index / 16000).

Pipeline (all fixed, so a rerun writes byte-identical files on the same machine and package
versions; see scripts/data/speech.py, shared with make_clips.py):
  1. each command: espeak-ng -> sox (16 kHz, repeatable, no dither) -> trimmed at 1 % of its
     peak sample -> scaled to a peak of 0.5
  2. pauses from numpy's PCG64 with a fixed seed; the pause is the gap between two trimmed
     commands (frame onsets/offsets lie inside them, so speech gaps are at least as long)
  3. noise covers the whole file, silences included, and is scaled so that
     10*log10(P_speech / P_noise) = SNR, where P_speech is the mean square of the clean speech
     over the samples inside the command spans (onset..offset) and P_noise the mean square of
     the noise over the whole file; pink20, pink10 and pink6 use one pink noise realisation
  4. if a mix peaks above 0.95 it is scaled down to 0.95; 16 kHz: rounded to int16;
     48 kHz stereo: sox -R -D rate -v 48000, remix 1.0 / 0.9, 16-bit

--long MINUTES also writes long_48k_stereo.wav (and its manifest entry "long", which has its
own "commands" list): at least MINUTES of the same commands in shuffled rounds with the same
pause rule, pink noise at 30 dB SNR, for a "nothing lost" capture test. It is built in 30 s
chunks streamed through sox, so memory stays small however long the file is; its noise is made
per chunk and cross-faded (sine/cosine, 0.5 s) so its power stays constant. Without --long a
stale long_48k_stereo.wav is removed so that the folder matches the manifest.

Needs espeak-ng, sox (scripts/setup.sh installs them) and numpy (re-runs itself with .venv's
python when the current one has no numpy: `scripts/setup.sh --reference` makes .venv).

Usage: scripts/data/make_segmentation.py [--out data/segmentation] [--long MINUTES]
"""
import argparse
import filecmp
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from speech import (RATE, ROOT, espeak_version, noise, np, speak, to_pcm16, trim,
                    write_wav)

LEAD_S, TRAIL_S = 1.0, 2.0
PAUSE_MIN_S, PAUSE_MAX_S = 0.5, 3.0
COMMAND_MIN_S, COMMAND_MAX_S = 1.0, 4.0
SPEECH_PEAK = 0.5
MAX_PEAK = 0.95
FRAME = RATE // 100           # 10 ms frames for the onset/offset rule
ONSET_FRACTION = 0.01         # frame RMS above this fraction of the command's peak = speech
OUT_RATE = 48000
STEREO_GAINS = (1.0, 0.9)     # left, right: slightly different so channels are distinguishable
BASE_SEED = 20240612

# (name, noise kind, SNR in dB or None)
VERSIONS = [
    ("clean", "none", None),
    ("pink20", "pink", 20),
    ("pink10", "pink", 10),
    ("pink6", "pink", 6),
    ("mixed10", "mixed", 10),
]
# Share of the noise power of each component of the "mixed" noise.
MIXED_SHARES = {"babble": 0.5, "brown": 0.25, "white": 0.25}
# One seed per noise component, so pink20/pink10/pink6 differ only in level.
NOISE_SEEDS = {"pink": BASE_SEED + 1, "brown": BASE_SEED + 2, "white": BASE_SEED + 3,
               "babble": BASE_SEED + 4}
PAUSE_SEED = BASE_SEED
LONG_SEED = BASE_SEED + 100
LONG_NOISE, LONG_SNR_DB = "pink", 30
LONG_CHUNK = 30 * RATE
LONG_CROSSFADE = RATE // 2

# (text spoken, espeak-ng voice, words per minute)
COMMANDS = [
    ("turn on the kitchen lights", "en-us", 160),
    ("set a timer for ten minutes", "en-gb", 150),
    ("pause the music", "en+f3", 140),
    ("what time is it", "en+m3", 125),
    ("turn off the bedroom lights", "en+f4", 130),
    ("remind me to water the plants at six", "en-us+m7", 155),
    ("stop the timer", "en-gb-x-rp", 120),
    ("turn the volume down", "en-029", 165),
    ("skip this song", "en-gb-scotland", 145),
    ("set an alarm for seven in the morning", "en-us-nyc", 135),
    ("dim the hallway lights to fifty percent", "en+f2", 170),
    ("how much time is left on the timer", "en-gb-x-gbclan", 190),
    ("resume playback", "en-us", 125),
    ("close the living room blinds", "en-gb", 155),
    ("cancel the egg timer", "en+f3", 180),
    ("next episode", "en+m3", 135),
    ("lock the front door", "en+f4", 160),
    ("what is the temperature outside", "en-us+m7", 150),
    ("mute the television", "en-gb-x-rp", 150),
    ("set the heating to twenty degrees", "en-029", 140),
    ("play the news", "en-gb-scotland", 120),
    ("start a five minute timer", "en-us-nyc", 175),
    ("turn on the fan", "en+f2", 130),
    ("shuffle my workout playlist", "en-gb-x-gbclan", 165),
    ("good night, turn everything off", "en-us", 145),
    ("open the garage door", "en-gb", 185),
    ("louder please", "en+f3", 125),
    ("switch off all the lights", "en-us+m7", 200),
]

# Background talkers for the babble noise: other sentences, none of them a command.
BABBLE_VOICES = [("en-gb", 170), ("en+f2", 150), ("en-us+m7", 185), ("en+f4", 160)]
BABBLE_SENTENCES = [
    "the committee will publish its report at the end of the month",
    "most of the rain fell overnight in the northern hills",
    "she said the train was late again because of the snow",
    "the museum opens a new exhibition about early photography",
    "our neighbours are painting their fence a darker green",
    "the recipe needs two cups of flour and a pinch of salt",
]
BABBLE_GAP_S = (0.05, 0.4)


def log(msg):
    print(f"make_segmentation: {msg}", file=sys.stderr, flush=True)


def rng_for(seed):
    return np.random.Generator(np.random.PCG64(seed))


def noise_any_length(kind, n, seed):
    """Unit-power noise like speech.noise(), but made at the next power-of-two length and cut
    to n samples: numpy's FFT of a length with a large prime factor takes hundreds of MB."""
    y = noise(kind, 1 << (n - 1).bit_length(), seed)[:n]
    return y / np.sqrt(np.mean(y * y))


def speech_span(x):
    """(first, last) sample index, inclusive, of the speech in x by the 10 ms frame rule."""
    thr = ONSET_FRACTION * np.max(np.abs(x))
    starts = np.arange(0, x.size, FRAME)
    rms = np.array([np.sqrt(np.mean(x[s: s + FRAME] ** 2)) for s in starts])
    loud = np.flatnonzero(rms > thr)
    if loud.size == 0:
        raise RuntimeError("no frame above the onset threshold")
    return int(starts[loud[0]]), int(min(starts[loud[-1]] + FRAME, x.size) - 1)


def speak_commands(tmp):
    """Every command as trimmed float speech with peak SPEECH_PEAK, plus its speech span."""
    clips = []
    for text, voice, wpm in COMMANDS:
        x = trim(speak(text, voice, wpm, tmp))
        x = x * (SPEECH_PEAK / np.max(np.abs(x)))
        dur = x.size / RATE
        if not COMMAND_MIN_S <= dur <= COMMAND_MAX_S:
            sys.exit(f"make_segmentation: '{text}' ({voice}, {wpm} wpm) lasts {dur:.2f} s, "
                     f"outside {COMMAND_MIN_S}-{COMMAND_MAX_S} s")
        clips.append({"text": text, "voice": voice, "wpm": wpm, "speech": x,
                      "span": speech_span(x)})
    return clips


def draw_pauses(rng, n):
    """n pauses in samples, uniform in PAUSE_MIN_S..PAUSE_MAX_S, both extremes present."""
    pauses = rng.uniform(PAUSE_MIN_S, PAUSE_MAX_S, n)
    lo, hi = rng.choice(n, size=2, replace=False)
    pauses[lo], pauses[hi] = PAUSE_MIN_S, PAUSE_MAX_S
    return [int(round(p * RATE)) for p in pauses]


def command_entry(clip, start):
    """Manifest entry of a clip placed at sample `start` of the 16 kHz timeline."""
    first, last = start + clip["span"][0], start + clip["span"][1]
    return {"text": clip["text"], "voice": clip["voice"], "wpm": clip["wpm"],
            "onset_s": round(first / RATE, 5), "offset_s": round(last / RATE, 5),
            "onset_sample": first, "offset_sample": last}


def span_energy(clip):
    """(sum of squares, sample count) of a clip's speech inside its span."""
    a, b = clip["span"]
    s = clip["speech"][a: b + 1]
    return float(np.sum(s * s)), s.size


def layout(clips, pauses):
    """The clean timeline, the command entries and P_speech (mean square inside the spans)."""
    lead, trail = int(round(LEAD_S * RATE)), int(round(TRAIL_S * RATE))
    total = lead + sum(c["speech"].size for c in clips) + sum(pauses) + trail
    x = np.zeros(total)
    entries, energy, count = [], 0.0, 0
    pos = lead
    for i, clip in enumerate(clips):
        x[pos: pos + clip["speech"].size] = clip["speech"]
        entries.append(command_entry(clip, pos))
        e, n = span_energy(clip)
        energy, count = energy + e, count + n
        pos += clip["speech"].size + (pauses[i] if i < len(pauses) else 0)
    return x, entries, energy / count


def babble(n, seed, tmp):
    """Unit-power babble, n samples: BABBLE_VOICES talkers at once, each reading the
    BABBLE_SENTENCES in its own shuffled order with short gaps, looped to length n."""
    rng = rng_for(seed)
    y = np.zeros(n)
    for voice, wpm in BABBLE_VOICES:
        said = [trim(speak(s, voice, wpm, tmp)) for s in BABBLE_SENTENCES]
        said = [s / np.sqrt(np.mean(s * s)) for s in said]  # every sentence equally loud
        offset = int(rng.integers(0, 2 * RATE))  # talkers do not start together
        parts, length = [], 0
        while length < offset + n:
            for k in rng.permutation(len(said)):
                gap = np.zeros(int(round(rng.uniform(*BABBLE_GAP_S) * RATE)))
                parts += [said[k], gap]
                length += said[k].size + gap.size
        y += np.concatenate(parts)[offset: offset + n]
    return y / np.sqrt(np.mean(y * y))


def make_noise(kind, n, tmp, cache):
    """Unit-power noise of kind "pink" or "mixed" covering n samples (cached per kind)."""
    if kind not in cache:
        if kind == "mixed":
            y = np.zeros(n)
            for part, share in MIXED_SHARES.items():
                if part == "babble":
                    comp = babble(n, NOISE_SEEDS["babble"], tmp)
                else:
                    comp = noise_any_length(part, n, NOISE_SEEDS[part])
                y += np.sqrt(share) * comp
            y = y / np.sqrt(np.mean(y * y))
        else:
            y = noise_any_length(kind, n, NOISE_SEEDS[kind])
        cache[kind] = y
    return cache[kind]


def replace_if_changed(tmp_path, dest):
    """Move tmp_path to dest unless dest already has the same bytes; True when written."""
    if dest.exists() and filecmp.cmp(tmp_path, dest, shallow=False):
        tmp_path.unlink()
        return False
    os.replace(tmp_path, dest)
    return True


def sox_to_48k_stereo_cmd(dest):
    """sox reading float32 16 kHz mono raw on stdin, writing dest as 48 kHz stereo 16-bit."""
    left, right = STEREO_GAINS
    return ["sox", "-R", "-D", "-V1", "-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1",
            "-r", str(RATE), "-L", "-", "-t", "wav", "-e", "signed-integer", "-b", "16", "-c", "2",
            str(dest), "rate", "-v", str(OUT_RATE), "remix", f"1v{left}", f"1v{right}"]


def write_version(out, name, x):
    """Write NAME_16k.wav and NAME_48k_stereo.wav from the float mix x; True when changed."""
    changed = False
    tmp16 = out / f".{name}_16k.wav.tmp"
    write_wav(tmp16, to_pcm16(x))
    changed |= replace_if_changed(tmp16, out / f"{name}_16k.wav")
    tmp48 = out / f".{name}_48k_stereo.wav.tmp"
    subprocess.run(sox_to_48k_stereo_cmd(tmp48), input=x.astype("<f4").tobytes(), check=True)
    changed |= replace_if_changed(tmp48, out / f"{name}_48k_stereo.wav")
    return changed


def long_schedule(clips, minutes):
    """Placements (start sample, clip) for the long file and its total length in samples."""
    rng = rng_for(LONG_SEED)
    lead, trail = int(round(LEAD_S * RATE)), int(round(TRAIL_S * RATE))
    want = int(round(minutes * 60 * RATE))
    placements, pos, first_round = [], lead, True
    while True:
        order = rng.permutation(len(clips))
        pauses = draw_pauses(rng, len(clips)) if first_round else \
            [int(round(rng.uniform(PAUSE_MIN_S, PAUSE_MAX_S) * RATE)) for _ in clips]
        first_round = False
        for k, pause in zip(order, pauses):
            placements.append((pos, clips[k]))
            end = pos + clips[k]["speech"].size
            if end + trail >= want:
                return placements, end + trail
            pos = end + pause


def write_long(out, clips, minutes):
    """Stream long_48k_stereo.wav through sox in chunks; returns its manifest entry."""
    placements, total = long_schedule(clips, minutes)
    energy = sum(span_energy(c)[0] for _, c in placements)
    count = sum(span_energy(c)[1] for _, c in placements)
    noise_gain = np.sqrt(energy / count / 10.0 ** (LONG_SNR_DB / 10.0))
    tmp48 = out / ".long_48k_stereo.wav.tmp"
    sox = subprocess.Popen(sox_to_48k_stereo_cmd(tmp48), stdin=subprocess.PIPE)
    tail, peak, next_placement = None, 0.0, 0
    for j, a in enumerate(range(0, total, LONG_CHUNK)):
        b = min(a + LONG_CHUNK, total)
        x = np.zeros(b - a)
        # placements are sorted by start; skip those that ended before this chunk
        while next_placement < len(placements) and \
                placements[next_placement][0] + placements[next_placement][1]["speech"].size <= a:
            next_placement += 1
        for start, clip in placements[next_placement:]:
            if start >= b:
                break
            s = clip["speech"]
            lo, hi = max(a, start), min(b, start + s.size)
            x[lo - a: hi - a] += s[lo - start: hi - start]
        # independent noise per chunk, cross-faded with the previous chunk's overhang
        n = noise_any_length(LONG_NOISE, LONG_CHUNK + LONG_CROSSFADE, LONG_SEED + 1 + j)
        if tail is not None:
            theta = (np.arange(LONG_CROSSFADE) + 0.5) / LONG_CROSSFADE * (np.pi / 2)
            n[:LONG_CROSSFADE] = tail * np.cos(theta) + n[:LONG_CROSSFADE] * np.sin(theta)
        tail = n[LONG_CHUNK:]
        x += noise_gain * n[: b - a]
        peak = max(peak, float(np.max(np.abs(x))))
        sox.stdin.write(x.astype("<f4").tobytes())
    sox.stdin.close()
    if sox.wait() != 0:
        sys.exit("make_segmentation: sox failed writing the long file")
    if peak > MAX_PEAK:
        sys.exit(f"make_segmentation: the long file peaks at {peak:.3f} (> {MAX_PEAK})")
    changed = replace_if_changed(tmp48, out / "long_48k_stereo.wav")
    log(f"long_48k_stereo.wav: {total / RATE / 60:.2f} min, {len(placements)} commands"
        + (" (written)" if changed else ""))
    return {"16k": None, "48k_stereo": "long_48k_stereo.wav", "noise": LONG_NOISE,
            "snr_db": LONG_SNR_DB, "duration_s": round(total / RATE, 5),
            "commands": [command_entry(c, start) for start, c in placements]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "data" / "segmentation"))
    ap.add_argument("--long", type=float, metavar="MINUTES",
                    help="also write long_48k_stereo.wav lasting at least MINUTES")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    files, summary = {}, []
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        clips = speak_commands(tmp)
        pauses = draw_pauses(rng_for(PAUSE_SEED), len(clips) - 1)
        clean, commands, p_speech = layout(clips, pauses)
        noise_cache = {}
        for name, kind, snr in VERSIONS:
            x = clean.copy()
            noise_power = 0.0
            if kind != "none":
                added = make_noise(kind, x.size, tmp, noise_cache) * \
                    np.sqrt(p_speech / 10.0 ** (snr / 10.0))
                noise_power = float(np.mean(added * added))
                x += added
            peak = float(np.max(np.abs(x)))
            if peak > MAX_PEAK:
                x *= MAX_PEAK / peak
            changed = write_version(out, name, x)
            measured = 10 * np.log10(p_speech / noise_power) if noise_power else None
            summary.append((name, kind, snr, measured, peak))
            log(f"{name}: noise {kind}" + (f" {snr} dB" if snr is not None else "")
                + (" (written)" if changed else ""))
            files[name] = {"16k": f"{name}_16k.wav", "48k_stereo": f"{name}_48k_stereo.wav",
                           "noise": kind, "snr_db": snr}
        if args.long:
            files["long"] = write_long(out, clips, args.long)
        elif (out / "long_48k_stereo.wav").exists():
            log("removing stale long_48k_stereo.wav (no --long)")
            (out / "long_48k_stereo.wav").unlink()

    manifest = {
        "generator": "scripts/data/make_segmentation.py",
        "tts": espeak_version(),
        "rate": RATE,
        "duration_s": round(clean.size / RATE, 5),
        "formats": {"16k": "WAV, PCM 16-bit signed, mono, 16000 Hz",
                    "48k_stereo": "WAV, PCM 16-bit signed, 2 channels, 48000 Hz, "
                                  f"channel gains {STEREO_GAINS[0]} / {STEREO_GAINS[1]}"},
        "onset_rule": "10 ms frames from the first sample of the trimmed command; onset = first "
                      "sample of the first frame whose RMS exceeds 1% of the command's peak "
                      "sample magnitude, offset = last sample of the last such frame; "
                      "*_sample are inclusive 16 kHz indices, *_s = index / 16000",
        "snr_definition": "10*log10(mean square of the clean speech inside the command spans "
                          "(onset..offset) / mean square of the noise over the whole file)",
        "noise_kinds": {"none": "clean", "pink": "power ~ 1/f",
                        "mixed": "babble (4 espeak-ng talkers, other sentences) 50%, brown "
                                 "25%, white 25% of the noise power"},
        "lead_s": LEAD_S,
        "trail_s": TRAIL_S,
        "pauses_s": [round(p / RATE, 5) for p in pauses],
        "files": files,
        "commands": commands,
    }
    data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    manifest_path = out / "manifest.json"
    if not (manifest_path.exists() and manifest_path.read_bytes() == data):
        manifest_path.write_bytes(data)

    print_summary(out, clean, commands, pauses, summary, files.get("long"))


def print_summary(out, clean, commands, pauses, versions, long_entry):
    lengths = [c["offset_s"] - c["onset_s"] for c in commands]
    gaps = [b["onset_s"] - a["offset_s"] for a, b in zip(commands, commands[1:])]
    print(f"{out}: {len(commands)} commands in {clean.size / RATE:.2f} s at {RATE} Hz")
    print(f"  speech spans {min(lengths):.2f}-{max(lengths):.2f} s; placed pauses "
          f"{min(pauses) / RATE:.2f}-{max(pauses) / RATE:.2f} s; gaps between spans "
          f"{min(gaps):.2f}-{max(gaps):.2f} s")
    for c in commands[:3] + [None] + commands[-2:]:
        print("  ..." if c is None else
              f"  {c['onset_s']:8.3f} - {c['offset_s']:8.3f} s  {c['voice']:<15} "
              f"{c['wpm']} wpm  {c['text']}")
    for name, kind, snr, measured, peak in versions:
        snr_text = f"SNR {snr} dB (measured {measured:.2f})" if snr is not None else "no noise"
        print(f"  {name:<8} {kind:<6} {snr_text:<28} peak {peak:.3f}")
    if long_entry:
        print(f"  long     {long_entry['noise']:<6} SNR {long_entry['snr_db']} dB, "
              f"{long_entry['duration_s'] / 60:.2f} min, {len(long_entry['commands'])} commands")


if __name__ == "__main__":
    main()
