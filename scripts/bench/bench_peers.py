#!/usr/bin/env python3
"""Time voxd against whisper.cpp and faster-whisper on the same audio, threads and run.

Run it from the repository root with the reference environment's Python:

    .venv/bin/python scripts/bench/bench_peers.py [--models tiny.en base] [--threads 2] [--runs 5]
        [--audio ../shared/data/jfk.wav] [--voxd PATH] [--json FILE] [--markdown]
        [--quant q8_0 q5_1] [--ct2-int8]

(`.venv` comes from `scripts/setup.sh --reference`; models from `voxd models fetch --dest models` (scripts/setup.sh).)

For each model it runs, back to back, so that all three see the same machine state:

  voxd            `voxd bench --json` (built with `cargo build --release` unless --voxd
                  names another binary or --no-build is given).
  whisper.cpp     through pywhispercpp, on the ggml file that `voxd model convert` writes
                  to data/ggml/ (made when missing). Default whisper.cpp context parameters.
  faster-whisper  CTranslate2 on the same CTranslate2 model directory voxd loads,
                  compute_type float32 by default (voxd computes in f32), cpu_threads=N and
                  num_workers (inter_threads) = 1.

--quant adds each model quantized to a ggml block type (voxd and whisper.cpp on the same file,
faster-whisper with compute_type int8 on the float directory); --ct2-int8 adds the model's
CTranslate2 int8 directory (models/NAME-ct2-int8), which voxd and faster-whisper (compute_type
int8) both load as it is.

Every measurement is one warm-up and then --runs timed repetitions, reported as best and
median in milliseconds. What each number is:

  encoder ctx C   One 30 s window of jfk.wav's features (3000 mel frames, zero-padded) through
                  the encoder with C audio positions (1500 = the full window; 512/256/128 keep
                  the first 2*C frames, the way whisper.cpp's audio_ctx does).
                  voxd: its `bench` encoder. whisper.cpp: wall time of `whisper_encode`
                  after whisper.cpp computed the mel; the audio context is set the only way the
                  API allows, by a `whisper_full` call with `audio_ctx` = C that is stopped by
                  the encoder-begin callback before it encodes. This includes the cross-attention
                  K/V that whisper.cpp's encode computes. faster-whisper: wall time of
                  `model.model.encode(features)`; CTranslate2 cannot shorten the audio context,
                  so C < 1500 is n/a.
  decoder/token   Mean time of one decoder step (one token, KV cache, logits) with the full
                  1500-position audio context, over the K tokens of jfk's greedy transcript.
                  voxd: its `bench` (after the start-of-transcript token, cross K/V made
                  before timing). whisper.cpp: wall time of K single-token `whisper_decode`
                  calls (n_past = 1..K) after one untimed call with the start-of-transcript
                  token, divided by K; each call computes the logits of its token.
                  faster-whisper: CTranslate2's generate() cannot be stepped one token at a
                  time from Python, so the script times greedy `generate()` on the encoder
                  output with the end-of-text token suppressed (so the length is exactly what
                  max_length allows) for 1 and for 1+K new tokens, back to back, and divides
                  the difference by K. The one-token call absorbs the fixed costs (prompt,
                  cross-attention K/V of the encoder output, set-up), so the difference is K
                  decoder steps, each with its logits, greedy pick and timestamp rules.
  end-to-end      The whole jfk.wav transcription from 16 kHz samples already in memory:
                  features, encoder, greedy decoding at temperature 0 only (no fallback),
                  language en, timestamps on, one 30 s window. voxd: its `bench`.
                  whisper.cpp: `Model.transcribe` (whisper_full: greedy, best_of 1,
                  temperature 0, temperature_inc 0, no_context, suppress_nst).
                  faster-whisper: `WhisperModel.transcribe(beam_size=1, best_of=1,
                  temperature=0.0, language="en", condition_on_previous_text=True,
                  vad_filter=False)` consumed fully.

whisper.cpp's own timings (whisper_print_timings) over the timed end-to-end runs are kept as a
cross-check and printed under each table (its "decode" line is its per-token decoder step).

The ratio columns are voxd's time divided by the peer's (median ratio, best ratio in
brackets): below 1.0 voxd is faster. Timings on a shared or loaded machine are noisy; the load
average is printed with the results.
"""
import argparse
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path

from machine import cpu_name, simd_flags

ROOT = Path(__file__).resolve().parents[2]
ENCODER_CTXS = [1500, 512, 256, 128]
SETUP_HINT = "run scripts/setup.sh --reference, then use .venv/bin/python scripts/bench/bench_peers.py"
PEERS = ["whisper.cpp", "faster-whisper"]


def log(msg):
    print(f"bench_peers: {msg}", file=sys.stderr, flush=True)


def fail(msg):
    sys.exit(f"bench_peers: error: {msg}")


def rel(path):
    """A path as shown to people: relative to the repository root when inside it."""
    p = Path(path).absolute()
    for base in (ROOT, ROOT.resolve()):
        try:
            return str(p.relative_to(base))
        except ValueError:
            pass
    return str(path)


# ----------------------------------------------------------------------------- timing helpers

def summarize(times_ms):
    return {
        "best_ms": min(times_ms),
        "median_ms": statistics.median(times_ms),
        "runs": len(times_ms),
        "times_ms": [round(t, 4) for t in times_ms],
    }


def time_ms(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def repeat(fn, runs):
    """One warm-up call of fn, then `runs` timed calls. fn returns milliseconds itself when it
    needs to time only part of its work; otherwise its wall time is taken."""
    def one():
        t = time.perf_counter()
        r = fn()
        wall = (time.perf_counter() - t) * 1e3
        return r if isinstance(r, float) else wall

    one()
    return summarize([one() for _ in range(runs)])


# ----------------------------------------------------------------------------- inputs

def read_audio(path):
    """16 kHz mono float32 samples, as whisper.cpp's own WAV reader makes them (int16 / 32768,
    channels averaged). Other formats go through faster-whisper's decoder (resampling)."""
    import numpy as np
    try:
        with wave.open(str(path), "rb") as w:
            ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            if width == 2 and rate == 16000:
                pcm = np.frombuffer(w.readframes(n), dtype=np.int16).astype(np.float32) / 32768.0
                return np.ascontiguousarray(pcm.reshape(-1, ch).mean(axis=1, dtype=np.float32))
    except wave.Error:
        pass
    log(f"{rel(path)} is not 16-bit 16 kHz PCM: decoding and resampling it with faster-whisper")
    from faster_whisper.audio import decode_audio
    return np.ascontiguousarray(decode_audio(str(path), sampling_rate=16000), dtype=np.float32)


def resolve_model(name):
    p = Path(name)
    if p.is_dir():
        return p.resolve().name, p.resolve()
    d = ROOT / "models" / name
    if not (d / "model.bin").exists():
        fail(f"model {name!r} not found at {rel(d)}: run target/release/voxd models fetch --dest models {name}")
    return name, d


CT2_INT8 = "ct2-int8"


def ct2_int8_dir(name, model_dir):
    """models/NAME-ct2-int8 beside the model: CTranslate2's int8 of it, made when missing."""
    int8_dir = model_dir.parent / f"{name}-{CT2_INT8}"
    if not (int8_dir / "model.bin").exists():
        log(f"making {rel(int8_dir)} with scripts/reference/ct2_quantize.py")
        r = subprocess.run([sys.executable, str(ROOT / "scripts" / "reference" / "ct2_quantize.py"),
                            str(model_dir), str(int8_dir)])
        if r.returncode != 0:
            fail(f"could not make {rel(int8_dir)}")
    return int8_dir


def build_voxd():
    log("building voxd: cargo build --release")
    r = subprocess.run(["cargo", "build", "--release"], cwd=ROOT)
    if r.returncode != 0:
        fail("cargo build --release failed (pass --voxd PATH to time another binary)")


QUANT_TYPES = ["q8_0", "q5_1", "q5_0", "q4_1", "q4_0"]


def ggml_file(voxd, name, model_dir, ggml_type):
    """The ggml file of `model_dir` with matrices in `ggml_type` (f16, f32 or a quant type)."""
    suffix = "" if ggml_type == "f16" else f"-{ggml_type}"
    out = ROOT / "data" / "ggml" / f"ggml-{name}{suffix}.bin"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [str(voxd), "model", "convert", str(model_dir), str(out)]
        if ggml_type == "f32":
            cmd.append("--f32")
        elif ggml_type in QUANT_TYPES:
            cmd += ["--quant", ggml_type]
        log(f"[{name}] writing {rel(out)}: voxd model convert")
        r = subprocess.run(cmd, cwd=ROOT)
        if r.returncode != 0 or not out.exists():
            fail(f"voxd model convert {rel(model_dir)} {rel(out)} failed")
    return out


# ----------------------------------------------------------------------------- voxd

def bench_voxd(voxd, name, model, args, audio):
    cmd = [str(voxd), "bench", "--model", str(model), "--threads", str(args.threads),
           "--runs", str(args.runs), "--audio", str(audio), "--json"]
    log(f"[{name}] voxd: {rel(voxd)} bench --threads {args.threads} --runs {args.runs}")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    rows = {}
    for line in proc.stdout:
        line = line.strip()
        if not line.startswith("{"):
            continue
        m = json.loads(line)
        key = measurement_key(m["what"], m.get("audio_ctx"))
        if key is None:
            continue
        rows[key] = {"best_ms": m["best_ms"], "median_ms": m["median_ms"], "runs": m["runs"]}
        rows["kernels"] = m.get("kernels")
        log(f"[{name}] voxd {label(key)}: {fmt_pair(rows[key])} ms")
    if proc.wait() != 0:
        fail(f"voxd bench exited with {proc.returncode}: {' '.join(cmd)}")
    if not rows:
        fail("voxd bench printed no measurement (is --voxd a voxd binary with `bench --json`?)")
    return rows


def measurement_key(what, audio_ctx):
    if what == "encoder":
        return f"encoder:{audio_ctx}"
    if what in ("decoder_token", "end_to_end"):
        return what
    return None


ROW_KEYS = [f"encoder:{c}" for c in ENCODER_CTXS] + ["decoder_token", "end_to_end"]


def label(key):
    if key.startswith("encoder:"):
        c = int(key.split(":")[1])
        return "encoder ctx 1500 (30 s)" if c == 1500 else f"encoder ctx {c}"
    return {"decoder_token": "decoder / token", "end_to_end": "end-to-end jfk.wav"}[key]


# ----------------------------------------------------------------------------- whisper.cpp

class WhisperCppLog:
    """Collects whisper.cpp's log lines (it logs through a callback) instead of letting them
    interleave with the progress output."""

    def __init__(self, pw):
        self.pw = pw
        self.lines = []
        pw.whisper_log_set(self._cb)

    def _cb(self, level, text):
        self.lines.append(text)

    def close(self):
        # Back to the default logger before the interpreter shuts down: a Python callback
        # called from a context freed during finalisation aborts the process.
        self.pw.whisper_log_set(None)


TIMING_RE = re.compile(r"whisper_print_timings:\s+(\w+) time =\s*([\d.]+) ms(?: /\s*(\d+) runs)?")


def whisper_cpp_timings(log_lines):
    """Parses whisper_print_timings' lines into {name: (total_ms, count)}."""
    out = {}
    for line in log_lines:
        m = TIMING_RE.search(line)
        if m:
            out[m.group(1)] = (float(m.group(2)), int(m.group(3) or 0))
    return out


def transcript_tokens(pw, ctx):
    """Token ids of the last whisper_full result: text and timestamp tokens, in order."""
    eot, beg = pw.whisper_token_eot(ctx), pw.whisper_token_beg(ctx)
    toks = []
    for s in range(pw.whisper_full_n_segments(ctx)):
        for i in range(pw.whisper_full_n_tokens(ctx, s)):
            t = pw.whisper_full_get_token_id(ctx, s, i)
            if t < eot or t >= beg:
                toks.append(t)
    return toks


def full_params(pw, threads, audio_ctx=0):
    p = pw.whisper_full_default_params(pw.whisper_sampling_strategy.WHISPER_SAMPLING_GREEDY)
    p.n_threads = threads
    p.language = "en"
    p.translate = False
    p.no_context = True
    p.no_timestamps = False
    p.print_progress = False
    p.print_realtime = False
    p.print_timestamps = False
    p.temperature = 0.0
    p.temperature_inc = 0.0
    p.greedy = {"best_of": 1}
    p.suppress_nst = True
    p.audio_ctx = audio_ctx
    return p


def bench_whisper_cpp(name, ggml, args, pcm):
    import _pywhispercpp as pw
    from pywhispercpp.model import Model

    threads, runs = args.threads, args.runs
    wlog = WhisperCppLog(pw)
    rows, info = {}, {"ggml_file": rel(ggml)}
    ctx = model = None
    try:
        ctx = pw.whisper_init_from_file_with_params(str(ggml), pw.whisper_context_default_params())
        if ctx is None:
            fail(f"whisper.cpp could not load {rel(ggml)}: " + "".join(wlog.lines[-5:]))
        info["system_info"] = pw.whisper_print_system_info().strip()
        cparams = pw.whisper_context_default_params()
        info["context_params"] = {k: getattr(cparams, k) for k in ("use_gpu", "flash_attn")}

        def set_audio_ctx(n):
            """whisper_full stores params.audio_ctx in the context's state before it encodes;
            the encoder-begin callback stops it there. It also leaves jfk's mel in the state."""
            p = full_params(pw, threads, audio_ctx=0 if n >= 1500 else n)
            p.set_encoder_begin_callback(lambda *_: False)
            rc = pw.whisper_full(ctx, p, pcm, len(pcm))
            if rc != 0:
                fail(f"whisper.cpp whisper_full (audio_ctx {n}) returned {rc}")

        def encode():
            rc = pw.whisper_encode(ctx, 0, threads)
            if rc != 0:
                fail(f"whisper.cpp whisper_encode returned {rc}")

        for c in ENCODER_CTXS:
            if c > pw.whisper_n_audio_ctx(ctx):
                continue
            set_audio_ctx(c)
            rows[f"encoder:{c}"] = repeat(encode, runs)
            log(f"[{name}] whisper.cpp {label(f'encoder:{c}')}: {fmt_pair(rows[f'encoder:{c}'])} ms")

        # The transcript's tokens, from a normal greedy run on the same context.
        rc = pw.whisper_full(ctx, full_params(pw, threads), pcm, len(pcm))
        if rc != 0:
            fail(f"whisper.cpp whisper_full returned {rc}")
        tokens = transcript_tokens(pw, ctx)
        info["decoder_tokens"] = len(tokens)
        if not tokens:
            fail("whisper.cpp transcribed jfk.wav to no token")

        set_audio_ctx(1500)
        encode()
        sot = pw.whisper_token_sot(ctx)

        def decode_steps():
            if pw.whisper_decode(ctx, sot, 1, 0, threads) != 0:
                fail("whisper.cpp whisper_decode failed")
            t = time.perf_counter()
            for i, tok in enumerate(tokens):
                if pw.whisper_decode(ctx, tok, 1, i + 1, threads) != 0:
                    fail("whisper.cpp whisper_decode failed")
            return (time.perf_counter() - t) * 1e3 / len(tokens)

        rows["decoder_token"] = repeat(decode_steps, runs)
        log(f"[{name}] whisper.cpp decoder / token ({len(tokens)} steps): "
            f"{fmt_pair(rows['decoder_token'])} ms")
        pw.whisper_free(ctx)
        ctx = None

        model = Model(str(ggml), n_threads=threads, print_progress=False, print_realtime=False,
                      print_timestamps=False, language="en", no_context=True,
                      no_timestamps=False, temperature=0.0, temperature_inc=0.0,
                      greedy={"best_of": 1}, suppress_nst=True)
        segments = []

        def transcribe():
            segments[:] = model.transcribe(pcm)

        transcribe()  # warm-up
        wlog.lines.clear()
        model.print_timings()
        before = whisper_cpp_timings(wlog.lines)
        times = [time_ms(transcribe) for _ in range(runs)]
        rows["end_to_end"] = summarize(times)
        wlog.lines.clear()
        model.print_timings()
        after = whisper_cpp_timings(wlog.lines)
        info["transcript"] = " ".join(s.text for s in segments).strip()
        log(f"[{name}] whisper.cpp end-to-end: {fmt_pair(rows['end_to_end'])} ms; "
            f"transcript: {info['transcript']!r}")
        own = {}
        for k, (total, count) in after.items():
            t0, c0 = before.get(k, (0.0, 0))
            own[k] = {"total_ms": round(total - t0, 3), "count": count - c0}
        info["own_timings_over_e2e_runs"] = own
        info["e2e_runs"] = runs
        del model
        model = None
    finally:
        if ctx is not None:
            pw.whisper_free(ctx)
        model = None
        gc.collect()
        wlog.close()
    return rows, info


# ----------------------------------------------------------------------------- faster-whisper

def bench_faster_whisper(name, model_dir, args, pcm, compute_type):
    import ctranslate2
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    threads, runs = args.threads, args.runs
    m = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type,
                     cpu_threads=threads, num_workers=1)
    info = {"compute_type": compute_type, "cpu_threads": threads, "inter_threads": 1}
    rows = {}

    # Encoder: the first 30 s window of the features, as transcribe() makes it.
    feats = m.feature_extractor(pcm)
    window = pad_or_trim(feats[:, : m.feature_extractor.nb_max_frames])
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(window[None], dtype=np.float32))
    holder = {}

    def encode():
        holder["enc"] = m.model.encode(features, to_cpu=False)

    rows["encoder:1500"] = repeat(encode, runs)
    log(f"[{name}] faster-whisper {label('encoder:1500')}: {fmt_pair(rows['encoder:1500'])} ms")
    enc = holder["enc"]

    # The transcript (for its token count and the check), then end-to-end.
    segments = []

    def transcribe():
        segs, _ = m.transcribe(pcm, beam_size=1, best_of=1, temperature=0.0, language="en",
                               condition_on_previous_text=True, vad_filter=False)
        segments[:] = list(segs)

    rows["end_to_end"] = repeat(transcribe, runs)
    info["transcript"] = " ".join(s.text.strip() for s in segments).strip()
    tokens = [t for s in segments for t in s.tokens]
    log(f"[{name}] faster-whisper end-to-end: {fmt_pair(rows['end_to_end'])} ms; "
        f"transcript: {info['transcript']!r}")

    # Decoder per token: generate() for 1 and 1+K new tokens, EOT suppressed.
    tok = Tokenizer(m.hf_tokenizer, m.model.is_multilingual, task="transcribe", language="en")
    prompt = list(tok.sot_sequence)
    k = max(len(tokens), 1)
    info["decoder_tokens"] = k

    def max_length_for(n):
        # CTranslate2 decodes min(max_length / 2, max_length - (len(prompt) - 1)) steps.
        return max(2 * n, n + len(prompt) - 1)

    def generate(n):
        r = m.model.generate(enc, [prompt], beam_size=1, max_length=max_length_for(n),
                             suppress_tokens=[tok.eot], suppress_blank=False,
                             return_scores=False)
        return len(r[0].sequences_ids[0])

    got_short, got_long = generate(1), generate(1 + k)
    if (got_short, got_long) != (1, 1 + k):
        log(f"[{name}] faster-whisper generated {got_short} and {got_long} tokens "
            f"(asked {1} and {1 + k}); dividing by the difference")
    steps = max(got_long - got_short, 1)

    def decode_steps():
        short = time_ms(lambda: generate(1))
        long = time_ms(lambda: generate(1 + k))
        return (long - short) / steps

    rows["decoder_token"] = repeat(decode_steps, runs)
    log(f"[{name}] faster-whisper decoder / token ({steps} steps, by difference): "
        f"{fmt_pair(rows['decoder_token'])} ms")
    del m, enc, features, holder
    gc.collect()
    return rows, info


# ----------------------------------------------------------------------------- output

def fmt_ms(v):
    return "n/a" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def fmt_pair(r):
    if not r:
        return "n/a"
    return f"{fmt_ms(r['best_ms'])} / {fmt_ms(r['median_ms'])}"


def fmt_ratio(ours, theirs):
    if not ours or not theirs or theirs["median_ms"] <= 0 or theirs["best_ms"] <= 0:
        return "n/a"
    return (f"{ours['median_ms'] / theirs['median_ms']:.2f} "
            f"({ours['best_ms'] / theirs['best_ms']:.2f})")


def headers(peers):
    return (["measurement", "voxd best/med ms"]
            + [f"{p} best/med ms" for p in peers]
            + [f"voxd/{p}" for p in peers])


def table_rows(res, peers):
    out = []
    for key in ROW_KEYS:
        v = res["voxd"].get(key)
        cols = [res.get(p, {}).get(key) for p in peers]
        if not (v or any(cols)):
            continue
        out.append([label(key), fmt_pair(v)] + [fmt_pair(c) for c in cols]
                   + [fmt_ratio(v, c) for c in cols])
    return out


def own_timing_line(info):
    own = (info or {}).get("own_timings_over_e2e_runs")
    if not own:
        return None
    runs = max(info.get("e2e_runs", 1), 1)
    parts = []
    if own.get("mel", {}).get("total_ms"):
        parts.append(f"mel {own['mel']['total_ms'] / runs:.1f} ms/run")
    for k, unit in (("encode", "call"), ("decode", "token"), ("batchd", "call"),
                    ("prompt", "call")):
        total, count = own.get(k, {}).get("total_ms", 0.0), own.get(k, {}).get("count", 0)
        if count:
            parts.append(f"{k} {total / count:.2f} ms/{unit} ({count / runs:g} per run)")
    return "whisper.cpp's own timings (whisper_print_timings) over the timed end-to-end runs: " \
        + ", ".join(parts)


def render(report, markdown):
    meta = report["meta"]
    peers = [p for p in PEERS if p in meta.get("peers", PEERS)]
    lines = []
    if markdown:
        lines.append(f"Threads {meta['threads']}, best and median of {meta['runs']} runs after "
                     f"one warm-up, audio `{meta['audio']}`, CPU {meta['cpu']} (SIMD flags "
                     f"{meta.get('simd_flags')}), voxd kernels {meta.get('kernels')}; load average "
                     f"{meta['load_before']} before, {meta['load_after']} after"
                     + (" (machine busy: timings are noisy). " if meta["busy"] else ". ")
                     + f"whisper.cpp via pywhispercpp {meta['versions'].get('pywhispercpp')} "
                     f"(ggml {meta['ggml_type']}), faster-whisper "
                     f"{meta['versions'].get('faster-whisper')} / ctranslate2 "
                     f"{meta['versions'].get('ctranslate2')} ({meta['fw_compute_type']}), "
                     f"OMP_WAIT_POLICY {meta['omp_wait_policy']}. "
                     "Ratios are voxd / peer on the median (best in brackets): below 1 voxd is faster.")
    else:
        lines.append(f"threads {meta['threads']}, {meta['runs']} runs after one warm-up, "
                     f"audio {meta['audio']}")
        lines.append(f"cpu {meta['cpu']} (SIMD flags {meta.get('simd_flags')}), voxd kernels "
                     f"{meta.get('kernels')}; load average {meta['load_before']} before, "
                     f"{meta['load_after']} after"
                     + ("  (machine busy: timings are noisy)" if meta["busy"] else ""))
        lines.append(f"whisper.cpp via pywhispercpp {meta['versions'].get('pywhispercpp')} "
                     f"(ggml {meta['ggml_type']}), faster-whisper "
                     f"{meta['versions'].get('faster-whisper')} / ctranslate2 "
                     f"{meta['versions'].get('ctranslate2')} ({meta['fw_compute_type']}); "
                     f"OMP_WAIT_POLICY {meta['omp_wait_policy']}")
        lines.append("ratios: voxd / peer, median (best); below 1.0 voxd is faster")
    for name, res in report["models"].items():
        rows = table_rows(res, peers)
        hdr = headers(peers)
        lines.append("")
        if markdown:
            lines.append(f"#### {name}")
            lines.append("")
            lines.append("| " + " | ".join(hdr) + " |")
            lines.append("|" + "|".join(["---"] + ["---:"] * (len(hdr) - 1)) + "|")
            for r in rows:
                lines.append("| " + " | ".join(r) + " |")
        else:
            lines.append(f"== {name} ==")
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(hdr)]
            def fmt(r):
                return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                                 for i, c in enumerate(r))
            lines.append(fmt(hdr))
            lines.append("  ".join("-" * w for w in widths))
            lines.extend(fmt(r) for r in rows)
        extra = own_timing_line(res.get("info", {}).get("whisper.cpp"))
        quant = name.split()[1] if " " in name else None
        if quant == CT2_INT8:
            same_file = ("CTranslate2 int8: voxd (its int8 rows as Q8_0) and faster-whisper with "
                         "compute_type int8 on the same int8 directory; whisper.cpp does not read it")
        elif quant:
            same_file = (f"quantized: voxd and whisper.cpp on the same {quant} ggml file, "
                         "faster-whisper with compute_type int8 on the same weights")
        else:
            same_file = None
        notes = [n for n in (same_file, extra, res.get("note")) if n]
        if notes:
            lines.append("")
            lines.extend(("- " if markdown else "  ") + n for n in notes)
    lines.append("")
    notes = [
        "encoder ctx C: one 30 s window of jfk.wav with C audio positions; whisper.cpp: wall time "
        "of whisper_encode (incl. its cross-attention K/V); faster-whisper: model.encode(), "
        "which cannot shorten the context (n/a).",
        "decoder / token: mean of one decoder step with logits, full audio context, over the "
        "greedy jfk transcript's tokens; whisper.cpp: single-token whisper_decode calls; "
        "faster-whisper: (generate 1+K tokens - generate 1 token) / K, EOT suppressed.",
        "end-to-end jfk.wav: features + encoder + greedy decoding at temperature 0, language en, "
        "from samples in memory.",
    ]
    lines.extend(("- " if markdown else "") + n for n in notes)
    return "\n".join(lines)


def load_average():
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(
        description="Time voxd against whisper.cpp (pywhispercpp) and faster-whisper; "
                    "run as .venv/bin/python scripts/bench/bench_peers.py")
    ap.add_argument("--models", nargs="+", default=["tiny.en", "base"], metavar="NAME",
                    help="models under models/ (or CTranslate2 directories); default tiny.en base")
    ap.add_argument("--threads", type=int, default=2, help="compute threads for every engine (2)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up (5)")
    ap.add_argument("--audio", default=None, metavar="WAV",
                    help="audio file (default ../shared/data/jfk.wav beside the repository)")
    ap.add_argument("--voxd", default=None, metavar="PATH",
                    help="voxd binary (default target/release/voxd, built with cargo first)")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    ap.add_argument("--peers", nargs="+", choices=PEERS, default=PEERS,
                    help="peers to time (default both)")
    ap.add_argument("--fw-compute-type", default="float32",
                    help="CTranslate2 compute type for faster-whisper (float32; also int8, "
                         "int8_float32)")
    ap.add_argument("--ggml-type", choices=["f16", "f32"], default="f16",
                    help="matrix type of the ggml file voxd writes for whisper.cpp (f16, "
                         "whisper.cpp's usual)")
    ap.add_argument("--quant", nargs="+", default=[], choices=QUANT_TYPES, metavar="TYPE",
                    help="also time each model quantized (q8_0, q5_1, q5_0, q4_1, q4_0): voxd "
                         "and whisper.cpp on the same quantized ggml file (`voxd model convert "
                         "--quant`), faster-whisper with compute_type int8 (CTranslate2 "
                         "quantizes the same weights to int8 as it loads them)")
    ap.add_argument("--ct2-int8", action="store_true",
                    help="also time each model's CTranslate2 int8 directory (models/NAME-ct2-int8, "
                         "made with scripts/reference/ct2_quantize.py when missing): voxd and "
                         "faster-whisper with compute_type int8 on the same directory "
                         "(whisper.cpp does not read it)")
    ap.add_argument("--omp-passive", action="store_true",
                    help="set OMP_WAIT_POLICY=PASSIVE for the peers (both use OpenMP, whose "
                         "spinning threads lose badly on a machine busy with other work); "
                         "off by default, as on an idle machine")
    ap.add_argument("--json", metavar="FILE", help="write every raw number to FILE")
    ap.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    args = ap.parse_args()
    if args.threads < 1 or args.runs < 1:
        fail("--threads and --runs must be at least 1")

    # Same thread budget for anything that reads these (numpy, OpenMP defaults); the engines
    # are also given --threads explicitly.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if args.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

    try:
        import numpy  # noqa: F401
        if "whisper.cpp" in args.peers:
            import _pywhispercpp  # noqa: F401
            import pywhispercpp.model  # noqa: F401
        if "faster-whisper" in args.peers:
            import ctranslate2  # noqa: F401
            import faster_whisper  # noqa: F401
    except ImportError as e:
        fail(f"missing the reference tools ({e}): {SETUP_HINT}")

    audio = Path(args.audio) if args.audio else ROOT.parent / "shared" / "data" / "jfk.wav"
    if not audio.exists():
        fail(f"no audio file {audio}")
    audio = audio.resolve()
    models = [resolve_model(n) for n in args.models]

    if args.voxd:
        voxd = Path(args.voxd).resolve()
    else:
        voxd = ROOT / "target" / "release" / "voxd"
        if not args.no_build:
            build_voxd()
    if not voxd.exists():
        fail(f"no voxd binary at {voxd} (build it with cargo build --release or pass --voxd)")

    import importlib.metadata as md
    versions = {}
    for pkg in ("pywhispercpp", "faster-whisper", "ctranslate2", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass

    pcm = read_audio(audio)
    audio_label = os.path.relpath(audio, ROOT)
    load_before = load_average()
    try:
        busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:
        busy = False
    report = {
        "meta": {
            "threads": args.threads, "runs": args.runs, "audio": audio_label,
            "audio_seconds": round(len(pcm) / 16000, 3), "cpu": cpu_name(),
            "simd_flags": simd_flags(),
            "cores": os.cpu_count(), "load_before": load_before,
            "versions": versions, "fw_compute_type": args.fw_compute_type,
            "ggml_type": args.ggml_type, "peers": args.peers,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "models": {},
    }

    # Each model as it is, then each quantized variant: (label, model dir, ggml type, voxd's
    # model, faster-whisper's compute type, the peers that read it).
    variants = []
    for name, model_dir in models:
        variants.append((name, model_dir, args.ggml_type, model_dir, args.fw_compute_type,
                         args.peers))
        for q in args.quant:
            ggml = ggml_file(voxd, name, model_dir, q)
            variants.append((f"{name} {q}", model_dir, q, ggml, "int8", args.peers))
        if args.ct2_int8:
            int8_dir = ct2_int8_dir(name, model_dir)
            variants.append((f"{name} {CT2_INT8}", int8_dir, None, int8_dir, "int8",
                             [p for p in args.peers if p == "faster-whisper"]))
    for name, model_dir, ggml_type, voxd_model, fw_type, peers in variants:
        res = {"voxd": bench_voxd(voxd, name, voxd_model, args, audio), "info": {}}
        if "whisper.cpp" in peers:
            ggml = ggml_file(voxd, name.split()[0], model_dir, ggml_type)
            rows, info = bench_whisper_cpp(name, ggml, args, pcm)
            res["whisper.cpp"], res["info"]["whisper.cpp"] = rows, info
        if "faster-whisper" in peers:
            rows, info = bench_faster_whisper(name, model_dir, args, pcm, fw_type)
            res["faster-whisper"], res["info"]["faster-whisper"] = rows, info
        texts = {p: res["info"][p].get("transcript", "") for p in peers}
        norm = {p: re.sub(r"[^a-z ]", "", t.lower()).split() for p, t in texts.items()}
        if len({tuple(v) for v in norm.values()}) > 1:
            res["note"] = "the peers' transcripts differ: " + "; ".join(
                f"{p}: {t!r}" for p, t in texts.items())
            log(f"[{name}] warning: {res['note']}")
        report["models"][name] = res
        report["meta"]["kernels"] = res["voxd"].pop("kernels", None)

    try:
        report["meta"]["busy"] = busy or os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:
        report["meta"]["busy"] = busy
    report["meta"]["load_after"] = load_average()

    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    print(render(report, args.markdown))


if __name__ == "__main__":
    main()
