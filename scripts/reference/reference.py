#!/usr/bin/env python3
"""Write reference outputs of faster-whisper / CTranslate2 for voxd's tests and benchmarks.

Reference tools only (never a runtime dependency of voxd). Needs .venv/ from
`scripts/setup.sh --reference` (this script re-runs itself with .venv's python when the
current one lacks faster_whisper) and the models in models/ (scripts/setup.sh installs them).

  scripts/reference/reference.py [transcripts]   (COMMITTED) tests/fixtures/reference/transcripts.json:
        for models/tiny.en and models/base, every clip in tests/fixtures/clips/clips.json plus
        ../shared/data/jfk.wav: segments (start, end, text, tokens), full text, normalized text.
        Also for models/tiny.en-ct2-int8 (CTranslate2 int8, made by `scripts/setup.sh
        --reference`) with compute_type int8: the quantized model as CTranslate2 runs it.
        Rewrites the file only when its content changes.

  scripts/reference/reference.py numeric         (NOT committed) data/reference/MODEL/ for jfk.wav:
        jfk_mel.npy            float32 [n_mels, 3000]: the log-mel window exactly as
                               faster-whisper passes it to its encoder (first window)
        jfk_encoder.npy        float32 [1, 1500, width]: CTranslate2's encoder output on it
        jfk_encoder_ctxN.npy   float32 [1, N, width]: encoder output for a shortened audio
                               context: the first 2N mel frames of jfk_mel.npy (the frames
                               that hold audio, no padding frames)
        jfk_tokens.json        the greedy decoder prompt and token ids of each decoded
                               window, and the segments cut from them
        manifest.json          what each file is
        A file that already exists is left alone (delete data/reference/ to redo).

Decoding options (both modes): compute_type float32 (int8 for the int8 model), cpu_threads 2, beam_size 1, best_of 1,
temperature 0.0 only (no fallback), condition_on_previous_text True, language "en",
no VAD, word_timestamps False, timestamps on (faster-whisper's defaults otherwise).
"""
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

try:
    import ctranslate2
    import faster_whisper
    import numpy as np
    from faster_whisper import WhisperModel
except ImportError:  # fall back to the reference venv, once
    venv_py = ROOT / ".venv" / "bin" / "python"
    if venv_py.exists() and os.environ.get("VOXD_REFERENCE_REEXEC") != "1":
        os.environ["VOXD_REFERENCE_REEXEC"] = "1"
        os.execv(str(venv_py), [str(venv_py), __file__] + sys.argv[1:])
    sys.exit("reference: needs faster-whisper (run scripts/setup.sh --reference)")

MODELS = {"tiny.en": "models/tiny.en", "base": "models/base"}
# Transcripts only: quantized CTranslate2 directories and the compute type they run in.
QUANTIZED_MODELS = {"tiny.en-ct2-int8": ("models/tiny.en-ct2-int8", "int8")}
CLIPS_DIR = "tests/fixtures/clips"
JFK = "../shared/data/jfk.wav"  # relative to the repository root
TRANSCRIPTS = ROOT / "tests" / "fixtures" / "reference" / "transcripts.json"
NUMERIC_DIR = ROOT / "data" / "reference"

CPU_THREADS = 2
MODEL_OPTIONS = {"device": "cpu", "compute_type": "float32", "cpu_threads": CPU_THREADS}
TRANSCRIBE_OPTIONS = {
    "language": "en",
    "beam_size": 1,
    "best_of": 1,
    "temperature": 0.0,
    "condition_on_previous_text": True,
    "vad_filter": False,
    "word_timestamps": False,
    "without_timestamps": False,
}

NORMALIZATION = (
    "lowercase the text; delete every character that is neither a letter, a digit nor "
    "whitespace (Python str.isalnum(), Rust char::is_alphanumeric(): the same for this "
    "English text), so punctuation is deleted, not replaced by a space ('don't' -> 'dont', "
    "'twenty-one' -> 'twentyone', '10:30' -> '1030'); then replace each run of whitespace by "
    "one space and strip leading and trailing whitespace"
)


def normalize(text):
    """The rule stated in NORMALIZATION (also written into transcripts.json)."""
    kept = "".join(c for c in text.lower() if c.isalnum() or c.isspace())
    return " ".join(kept.split())


def log(msg):
    print(f"reference: {msg}", file=sys.stderr, flush=True)


def load_model(path, compute_type=MODEL_OPTIONS["compute_type"]):
    if not (ROOT / path / "model.bin").exists():
        sys.exit(f"reference: {path} missing (run scripts/setup.sh --reference)")
    return WhisperModel(str(ROOT / path), **{**MODEL_OPTIONS, "compute_type": compute_type})


def transcribe(model, wav):
    segments, _info = model.transcribe(str(ROOT / wav), **TRANSCRIBE_OPTIONS)
    return list(segments)


def clip_list():
    manifest = json.loads((ROOT / CLIPS_DIR / "clips.json").read_text())
    clips = [(f"{CLIPS_DIR}/{c['file']}", c["text"]) for c in manifest["clips"]]
    jfk_text = ("And so my fellow Americans, ask not what your country can do for you, "
                "ask what you can do for your country.")
    return clips + [(JFK, jfk_text)]


def cmd_transcripts():
    clips = clip_list()
    out = {
        "generator": "scripts/reference/reference.py transcripts",
        "faster_whisper_version": faster_whisper.__version__,
        "ctranslate2_version": ctranslate2.__version__,
        "model_options": MODEL_OPTIONS,
        "transcribe_options": TRANSCRIBE_OPTIONS,
        "paths": "relative to the repository root",
        "text": "concatenation of the segment texts, stripped",
        "normalization": NORMALIZATION,
        "models": {},
    }
    mismatches = []
    models = {name: (path, MODEL_OPTIONS["compute_type"]) for name, path in MODELS.items()}
    models.update(QUANTIZED_MODELS)
    for name, (path, compute_type) in models.items():
        t0 = time.time()
        model = load_model(path, compute_type)
        entries = {}
        for wav, spoken in clips:
            segs = transcribe(model, wav)
            text = "".join(s.text for s in segs).strip()
            entries[wav] = {
                "segments": [
                    {"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text,
                     "tokens": list(s.tokens)}
                    for s in segs
                ],
                "text": text,
                "normalized": normalize(text),
            }
            if normalize(text) != normalize(spoken):
                mismatches.append((name, wav, spoken, text))
        out["models"][name] = {"path": path, "compute_type": compute_type, "clips": entries}
        log(f"{name}: {len(clips)} files in {time.time() - t0:.1f} s")

    data = json.dumps(out, indent=1, ensure_ascii=False) + "\n"
    TRANSCRIPTS.parent.mkdir(parents=True, exist_ok=True)
    if TRANSCRIPTS.exists() and TRANSCRIPTS.read_text() == data:
        log(f"{TRANSCRIPTS.relative_to(ROOT)} unchanged")
    else:
        TRANSCRIPTS.write_text(data)
        log(f"wrote {TRANSCRIPTS.relative_to(ROOT)}")
    log(f"{len(mismatches)} transcripts differ from the spoken text after normalization "
        "(numbers as digits count as a difference):")
    for name, wav, spoken, text in mismatches:
        log(f"  {name:8s} {pathlib.Path(wav).name}: spoken {spoken!r} -> {text!r}")


def save_npy(path, array):
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)
    log(f"wrote {path.relative_to(ROOT)} {list(array.shape)} {array.dtype}")


def cmd_numeric():
    for name in MODELS:
        d = NUMERIC_DIR / name
        mel_p, enc_p, tok_p, man_p = (d / "jfk_mel.npy", d / "jfk_encoder.npy",
                                      d / "jfk_tokens.json", d / "manifest.json")
        if all(p.exists() for p in (mel_p, enc_p, tok_p, man_p)) and list(d.glob("jfk_encoder_ctx*.npy")):
            log(f"{name}: numeric references present in {d.relative_to(ROOT)}")
            continue
        d.mkdir(parents=True, exist_ok=True)
        model = load_model(MODELS[name])

        # Capture what faster-whisper really feeds its encoder and the decoder prompts.
        seen = {"features": [], "decodes": []}
        encode, generate = model.encode, model.generate_with_fallback

        def spy_encode(features):
            seen["features"].append(np.array(features, dtype=np.float32, copy=True))
            return encode(features)

        def spy_generate(encoder_output, prompt, tokenizer, options):
            out = generate(encoder_output, prompt, tokenizer, options)
            seen["decodes"].append({"prompt": list(prompt),
                                    "tokens": list(out[0].sequences_ids[0])})
            return out

        model.encode, model.generate_with_fallback = spy_encode, spy_generate
        segs = transcribe(model, JFK)
        model.encode, model.generate_with_fallback = encode, generate

        mel = seen["features"][0]
        if mel.ndim == 3:
            mel = mel[0]
        mel = np.ascontiguousarray(mel, dtype=np.float32)

        # Number of mel frames that hold audio (faster-whisper: content_frames).
        audio = faster_whisper.decode_audio(str(ROOT / JFK))
        content_frames = model.feature_extractor(audio).shape[-1] - 1
        ctx_frames = min(content_frames, mel.shape[-1]) // 2 * 2

        def run_encoder(features):
            sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]))
            return np.array(model.model.encode(sv, to_cpu=True), dtype=np.float32)

        if not mel_p.exists():
            save_npy(mel_p, mel)
        if not enc_p.exists():
            save_npy(enc_p, run_encoder(mel))
        ctx_p = d / f"jfk_encoder_ctx{ctx_frames // 2}.npy"
        short_note = None
        if not ctx_p.exists():
            try:
                save_npy(ctx_p, run_encoder(mel[:, :ctx_frames]))
            except Exception as e:  # CT2 refusing a shortened context: skip that file
                short_note = f"CTranslate2 refused a shortened context: {e}"
                log(short_note)
        if not tok_p.exists():
            tokens = {
                "audio": JFK,
                "model": MODELS[name],
                "transcribe_options": TRANSCRIBE_OPTIONS,
                "note": "decodes: one per 30 s window decoded; prompt = the tokens given to "
                        "the decoder first, tokens = the greedy tokens it generated after them "
                        "(timestamp tokens included, end of text excluded). segments: "
                        "faster-whisper's segments cut from those tokens (segment.tokens)",
                "decodes": seen["decodes"],
                "segments": [
                    {"tokens": list(s.tokens), "start": round(s.start, 3),
                     "end": round(s.end, 3), "text": s.text}
                    for s in segs
                ],
            }
            tok_p.write_text(json.dumps(tokens, indent=1) + "\n")
            log(f"wrote {tok_p.relative_to(ROOT)}")
        manifest = {
            "generator": "scripts/reference/reference.py numeric",
            "faster_whisper_version": faster_whisper.__version__,
            "ctranslate2_version": ctranslate2.__version__,
            "model": MODELS[name],
            "model_options": MODEL_OPTIONS,
            "audio": JFK,
            "content_frames": content_frames,
            "files": {
                mel_p.name: "log-mel features of the first 30 s window as faster-whisper feeds "
                            "its encoder: float32 [n_mels, 3000]; frames past the audio are "
                            "zeros (padding happens after the log-mel normalisation)",
                enc_p.name: "CTranslate2 encoder output for jfk_mel.npy: float32 [1, 1500, width]",
                ctx_p.name: (short_note or
                             f"CTranslate2 encoder output for jfk_mel.npy[:, :{ctx_frames}] "
                             f"(shortened audio context): float32 [1, {ctx_frames // 2}, width]"),
                tok_p.name: "greedy decoder prompt and generated token ids of each window, and the segments",
            },
        }
        man_p.write_text(json.dumps(manifest, indent=1) + "\n")


def main():
    args = sys.argv[1:]
    mode = args[0] if args else "transcripts"
    if mode in ("-h", "--help"):
        print(__doc__)
        return
    if mode == "transcripts":
        cmd_transcripts()
    elif mode == "numeric":
        cmd_numeric()
    else:
        sys.exit(f"reference: unknown mode {mode!r} (transcripts | numeric)")


if __name__ == "__main__":
    main()
