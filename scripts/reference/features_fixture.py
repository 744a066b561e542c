#!/usr/bin/env python3
"""Regenerate the reference fixtures under tests/fixtures/features/.

The Rust tests of src/whisper/mel.rs and src/whisper/tokenizer.rs compare against numbers
computed here by the reference implementations:

- mel_filters.json: librosa.filters.mel (htk=False, norm="slaney") for sr 16000, n_fft 400,
  n_mels 80 and 128: the sum of every row plus a sample of single entries.
- jfk_mel.json: faster-whisper's FeatureExtractor on ../shared/data/jfk.wav, exactly as its
  transcribe() builds the first 30 s encoder window (padding 160, the window sliced to the
  content frames and zero-padded to 3000 frames), plus openai-whisper's padding (480000), for
  80 and 128 mel bands: shapes, global maxima and a sample of values with their indices; and
  the complete features of two very short signals (edge cases of the reflect padding).
- tokens.json: the token ids a varied set of strings gets, for tiny.en and base, from two
  references: openai-whisper's tokenizer (tiktoken with the gpt2/multilingual ranks shipped in
  the openai-whisper package) and faster-whisper's (the HF `tokenizers` BPE loaded from each
  model's tokenizer.json). They agree for tiny.en; for base the tokenizer.json lacks the first
  merge ("Ġ t" -> "Ġt", id 256), so faster-whisper splits " t..." words differently.

Needs numpy, librosa, faster-whisper (brings tokenizers), tiktoken, and openai-whisper for its
assets only (`pip install --no-deps openai-whisper`; torch is not needed):
    python3 scripts/reference/features_fixture.py [--models models] [--jfk ../shared/data/jfk.wav]
"""
import base64
import importlib.util
import argparse
import json
import pathlib
import wave

import librosa
import numpy as np
import tiktoken
import tokenizers
from faster_whisper.audio import pad_or_trim
from faster_whisper.feature_extractor import FeatureExtractor

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "features"

TEXTS = [
    "Hello world",
    " And so my fellow Americans, ask not what your country can do for you",
    "  two leading spaces",
    "trailing space ",
    "tabs\tand\nnew lines\n\n  indented",
    "a  b   c    d",
    "It's 12:30, isn't it? I'd've thought they'll say we're fine; you've I'm",
    "DON'T SHOUT'S 'quoted' \"double\"",
    "3.14159 and 1,000,000 and ½ ² 0x1F",
    "mixed123abc456 e-mail: someone@example.com $100.00 (approx.)",
    "Ünïcödé façade naïve café Ångström",
    "日本語のテキストです。你好，世界。",
    "Привет, мир! Как дела?",
    "안녕하세요 세계",
    "مرحبا بالعالم",
    "हिन्दी पाठ और संख्या १२३",
    "สวัสดีครับ",
    "emoji 🎉🚀 ok 👍🏽",
    "...!!!??? --- ***",
    "word\u00a0nbsp and\u2003em space",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Turn on the kitchen lights. Set a timer for 10 minutes!",
    "\n",
    "   ",
    " ",
    "",
]


def read_wav_mono16(path):
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def mel_filters_fixture():
    out = {}
    rng = np.random.default_rng(1)
    for n_mels in (80, 128):
        f = librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels)
        fw = FeatureExtractor.get_mel_filters(16000, 400, n_mels=n_mels).astype(np.float32)
        assert np.abs(f - fw).max() < 1e-7, "librosa and faster-whisper filters disagree"
        nz = np.argwhere(f > 0)
        picks = nz[rng.choice(len(nz), size=40, replace=False)]
        out[str(n_mels)] = {
            "n_freqs": int(f.shape[1]),
            "row_sums": [float(s) for s in f.astype(np.float64).sum(axis=1)],
            "entries": [[int(m), int(k), float(f[m, k])] for m, k in picks],
            "nonzero": int(len(nz)),
        }
    return out


def sample_values(x, rng, count, extra_frames):
    n_mels, n_frames = x.shape
    idx = [(int(rng.integers(n_mels)), int(rng.integers(n_frames))) for _ in range(count)]
    for t in extra_frames:
        if 0 <= t < n_frames:
            idx += [(m, t) for m in (0, 1, n_mels // 2, n_mels - 1)]
    return [[m, t, float(x[m, t])] for m, t in idx]


def mel_fixture(jfk_path):
    audio = read_wav_mono16(jfk_path)
    rng = np.random.default_rng(2)
    out = {"samples": int(len(audio)), "cases": []}
    for n_mels in (80, 128):
        fe = FeatureExtractor(feature_size=n_mels)
        # faster-whisper transcribe(): padding 160, content = all frames but the last,
        # each window sliced to the content and pad_or_trim'ed to 3000 frames.
        feats = fe(audio)
        content = feats.shape[-1] - 1
        seek = 0
        size = min(fe.nb_max_frames, content - seek)
        window = pad_or_trim(feats[:, seek : seek + size])
        boundary = [0, 1, 2, size - 2, size - 1, size, size + 1, 2999]
        out["cases"].append(
            {
                "n_mels": n_mels,
                "padding": 160,
                "n_frames": int(feats.shape[-1]),
                "max": float(feats.max()),
                "window_start": seek,
                "window_frames": int(size),
                "values": sample_values(window, rng, 300, boundary),
            }
        )
        # openai-whisper: padding 480000 (30 s of zeros), content = all frames but the last 3000.
        feats = fe(audio, padding=480000)
        content = feats.shape[-1] - 3000
        seek = 500
        size = min(3000, content - seek)
        window = pad_or_trim(feats[:, seek : seek + size])
        out["cases"].append(
            {
                "n_mels": n_mels,
                "padding": 480000,
                "n_frames": int(feats.shape[-1]),
                "max": float(feats.max()),
                "window_start": seek,
                "window_frames": int(size),
                "values": sample_values(window, rng, 100, [0, size - 1, size]),
            }
        )
    # Very short signals exercise numpy's repeated reflection (signal shorter than the pad).
    short = []
    for n, padding in ((37, 160), (1, 160), (170, 0), (401, 0)):
        x = (np.sin(np.arange(n) * 0.3) * 0.5).astype(np.float32)
        feats = FeatureExtractor(feature_size=80)(x, padding=padding)
        short.append(
            {
                "len": n,
                "padding": padding,
                "n_frames": int(feats.shape[-1]),
                "data": [float(v) for v in feats.reshape(-1)],
            }
        )
    out["short"] = short
    return out


GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def openai_whisper_encoding(name):
    """The tiktoken encoding openai-whisper builds from its assets, without importing torch."""
    spec = importlib.util.find_spec("whisper")
    assets = pathlib.Path(spec.origin).parent / "assets"
    ranks = {}
    for line in (assets / f"{name}.tiktoken").read_text().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(
        name=name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )


def tokens_fixture(models):
    out = {"texts": TEXTS, "models": {}}
    for name, ranks in (("tiny.en", "gpt2"), ("base", "multilingual")):
        tok = tokenizers.Tokenizer.from_file(str(models / name / "tokenizer.json"))
        hf = [tok.encode(t, add_special_tokens=False).ids for t in TEXTS]
        enc = openai_whisper_encoding(ranks)
        tk = [enc.encode(t) for t in TEXTS]
        for t, a, b in zip(TEXTS, hf, tk):
            assert tok.decode(a) == t and enc.decode(b) == t, (name, t)
        out["models"][name] = {"openai_whisper": tk, "faster_whisper": hf}
    return out


def dump(name, obj):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=pathlib.Path, default=ROOT / "models")
    ap.add_argument("--jfk", type=pathlib.Path, default=ROOT.parent / "shared/data/jfk.wav")
    args = ap.parse_args()
    dump("mel_filters.json", mel_filters_fixture())
    dump("jfk_mel.json", mel_fixture(args.jfk))
    dump("tokens.json", tokens_fixture(args.models))


if __name__ == "__main__":
    main()
