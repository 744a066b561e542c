#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) from the repository's real files.

    python3 scripts/data/fuzz_seeds.py [--models DIR]

Standard library only. Every seed is small (at most a few tens of KB), so that the fuzzer
mutates structure rather than bulk data:

- wav: the first tenth of a second of test clips, rewritten in every sample layout the reader
  takes (8/16/24/32-bit integer, 32-bit float, stereo, WAVE_FORMAT_EXTENSIBLE, other rates).
- gguf_header, gguf_model: tiny LLaMA models with the real model's metadata, tokenizer head
  and the first blocks of its real tensors (shrunk dimensions), a SentencePiece variant, and
  the real file's first 16 KB.
- ct2_model: a one-layer model.bin with tiny.en's variable names, aliases and scalars and the
  first values of its real tensors, the same with its weights quantized to int8 as
  CTranslate2's converter does, and the real file's first 4 KB.
- ct2_vocabulary: the real vocabulary's first 300 tokens plus every special and timestamp
  token, and the real file's first 4 KB.
- ggml_model: a one-layer whisper.cpp file with the same tiny weights and a real vocabulary
  head, and one whose vocabulary count is Whisper's.
- grammar, grammar_template: the repository's grammars and every sentence template in them.
- config: config.toml and the test configuration.
- wyoming: client sessions as Home Assistant sends them (describe; transcribe with 16-bit
  16 kHz chunks of a test clip, and with 32-bit 48 kHz stereo ones; recognize, handle),
  with the data both in the header and as extra data.

Regenerate after a format change; the output is deterministic. Inputs that once made a target
fail are kept beside the seeds as regression_* files.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import sys
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def out_dir(target):
    """The target's corpus folder, emptied of earlier seeds; inputs that once failed
    (regression_*, each with a test of its own) are kept."""
    path = os.path.join(CORPUS, target)
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if not name.startswith("regression_"):
            os.remove(os.path.join(path, name))
    return path


def write(target_dir, name, data):
    with open(os.path.join(target_dir, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------------------------------- WAV


def wav_bytes(rate, channels, bits, fmt_tag, frames_bytes, extensible=False):
    """A RIFF/WAVE file; fmt_tag 1 = PCM, 3 = IEEE float."""
    block_align = channels * bits // 8
    if extensible:
        sub_format = struct.pack("<H", fmt_tag) + bytes.fromhex("000000001000800000aa00389b71")
        fmt = struct.pack(
            "<HHIIHHHHI", 0xFFFE, channels, rate, rate * block_align, block_align, bits, 22, bits,
            (1 << channels) - 1) + sub_format
    else:
        fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block_align, block_align,
                          bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(frames_bytes)) + frames_bytes
    return b"RIFF" + struct.pack("<I", len(body)) + body


def seeds_wav():
    d = out_dir("wav")
    clips = sorted(os.listdir(os.path.join(ROOT, "tests", "fixtures", "clips")))
    clips = [c for c in clips if c.endswith(".wav")][:3]
    for n, clip in enumerate(clips):
        with wave.open(os.path.join(ROOT, "tests", "fixtures", "clips", clip)) as w:
            rate = w.getframerate()
            assert w.getsampwidth() == 2 and w.getnchannels() == 1, clip
            w.setpos(w.getnframes() // 3)  # inside the speech, not the leading silence
            raw = w.readframes(rate // 10)
        s16 = list(struct.unpack("<%dh" % (len(raw) // 2), raw))
        layouts = {
            "s16": (rate, 1, 16, 1, raw),
            "u8": (rate, 1, 8, 1, bytes((x >> 8) + 128 for x in s16)),
            "s24": (rate, 1, 24, 1, b"".join(struct.pack("<i", x << 8)[:3] for x in s16)),
            "s32": (rate, 1, 32, 1, struct.pack("<%di" % len(s16), *(x << 16 for x in s16))),
            "f32": (rate, 1, 32, 3, struct.pack("<%df" % len(s16), *(x / 32768 for x in s16))),
            "stereo": (rate, 2, 16, 1, struct.pack("<%dh" % (2 * len(s16)),
                                                   *(v for x in s16 for v in (x, -x)))),
            # The same samples labelled with other rates: the resampler's paths.
            "44100": (44100, 1, 16, 1, raw),
            "8000": (8000, 1, 16, 1, raw),
        }
        for name, (r, ch, bits, tag, frames) in layouts.items():
            # Every clip in 16-bit; the other layouts from the first clip only.
            if n == 0 or name == "s16":
                write(d, "%s_%s.wav" % (clip[:2], name), wav_bytes(r, ch, bits, tag, frames))
        if n == 0:
            write(d, "%s_s16_extensible.wav" % clip[:2],
                  wav_bytes(rate, 1, 16, 1, raw, extensible=True))


# ------------------------------------------------------------------------------------ GGUF

GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                10: "<Q", 11: "<q", 12: "<d"}
T_STRING, T_ARRAY, T_U32, T_F32, T_BOOL = 8, 9, 4, 6, 7
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1, GGML_Q8_0 = 0, 1, 2, 3, 8
# (elements per block, bytes per block)
GGML_BLOCKS = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_Q4_0: (32, 18), GGML_Q4_1: (32, 20),
               GGML_Q8_0: (32, 34)}


class GgufReader:
    """The metadata and tensor directory of a GGUF file, and its tensors' bytes."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.buf = self.f.read(8 << 20)
        self.pos = 0
        assert self.buf[:4] == b"GGUF", path
        self.pos = 4
        self.version = self.scalar(4)
        n_tensors, n_kv = self.scalar(10), self.scalar(10)
        self.kv = []
        for _ in range(n_kv):
            key = self.string()
            t = self.scalar(4)
            self.kv.append((key, t, self.value(t)))
        self.tensors = {}
        for _ in range(n_tensors):
            name = self.string()
            dims = [self.scalar(10) for _ in range(self.scalar(4))]
            self.tensors[name] = (dims, self.scalar(4), self.scalar(10))
        align = dict((k, v) for k, _, v in self.kv).get("general.alignment", 32)
        self.data_offset = (self.pos + align - 1) // align * align

    def scalar(self, t):
        fmt = GGUF_SCALARS[t] if t in GGUF_SCALARS else t
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.scalar(10)
        s = self.buf[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, t):
        if t == T_STRING:
            return self.string()
        if t == T_ARRAY:
            et, n = self.scalar(4), self.scalar(10)
            return (et, [self.value(et) for _ in range(n)])
        return self.scalar(t)

    def tensor_head(self, name, n_bytes):
        _, _, offset = self.tensors[name]
        self.f.seek(self.data_offset + offset)
        return self.f.read(n_bytes)


def gguf_value(t, v):
    if t == T_STRING:
        b = v.encode("utf-8")
        return struct.pack("<Q", len(b)) + b
    if t == T_ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gguf_value(et, x) for x in items)
    return struct.pack(GGUF_SCALARS[t], v)


def gguf_bytes(kv, tensors, alignment=32):
    """kv: [(key, type, value)]; tensors: [(name, dims innermost first, ggml type, data)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, t, v in kv:
        out += gguf_value(T_STRING, key) + struct.pack("<I", t) + gguf_value(t, v)
    offset = 0
    for name, dims, ty, data in tensors:
        out += gguf_value(T_STRING, name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", x) for x in dims) + struct.pack("<IQ", ty, offset)
        offset += (len(data) + alignment - 1) // alignment * alignment
    out += b"\0" * (-len(out) % alignment)
    for _, _, _, data in tensors:
        out += data + b"\0" * (-len(data) % alignment)
    return out


def tensor_size(ty, dims):
    n = 1
    for x in dims:
        n *= x
    per_block, block_bytes = GGML_BLOCKS[ty]
    assert n % per_block == 0
    return n // per_block * block_bytes


def pattern(n, seed):
    """n deterministic bytes."""
    out = b""
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, len(out))).digest()
    return out[:n]


def f16_bytes(values):
    return struct.pack("<%de" % len(values), *values)


def tiny_llama_tensors(real, types, n_vocab, d, kv, ff, tied):
    """One block's tensors with the shapes of a (d, kv, ff, n_vocab) model; quantized data
    from the front of the real file's tensors of the same type where there is one."""
    shapes = [("token_embd.weight", [d, n_vocab]), ("output_norm.weight", [d]),
              ("blk.0.attn_norm.weight", [d]), ("blk.0.attn_q.weight", [d, d]),
              ("blk.0.attn_k.weight", [d, kv]), ("blk.0.attn_v.weight", [d, kv]),
              ("blk.0.attn_output.weight", [d, d]), ("blk.0.ffn_norm.weight", [d]),
              ("blk.0.ffn_gate.weight", [d, ff]), ("blk.0.ffn_up.weight", [d, ff]),
              ("blk.0.ffn_down.weight", [ff, d])]
    if not tied:
        shapes.append(("output.weight", [d, n_vocab]))
    tensors = []
    for i, (name, dims) in enumerate(shapes):
        ty = GGML_F32 if len(dims) == 1 else types[i % len(types)]
        n = tensor_size(ty, dims)
        source = name if name in real.tensors else "token_embd.weight"
        if ty == GGML_F32 and len(dims) == 1:
            data = real.tensor_head("blk.0.attn_norm.weight", n)
        elif real.tensors[source][1] == ty:
            data = real.tensor_head(source, n)
        elif ty == GGML_F16:
            data = f16_bytes([((b - 128) / 512) for b in pattern(n // 2, i)])
        else:
            # Blocks of other types: a real scale (f16 0.01) then deterministic quants.
            per_block, block_bytes = GGML_BLOCKS[ty]
            head = f16_bytes([0.01]) + (f16_bytes([0.0]) if ty == GGML_Q4_1 else b"")
            data = b"".join(head + pattern(block_bytes - len(head), i * 1000 + k)
                            for k in range(n // block_bytes))
        assert len(data) == n, name
        tensors.append((name, dims, ty, data))
    return tensors


def seeds_gguf(models):
    path = os.path.join(models, "smollm2", "model.gguf")
    real = GgufReader(path)
    n_keep = 300
    meta = {k: (t, v) for k, t, v in real.kv}
    tokens = meta["tokenizer.ggml.tokens"][1][1][:n_keep]
    kept = set(tokens)
    merges = [m for m in meta["tokenizer.ggml.merges"][1][1]
              if m.replace(" ", "", 1) in kept and all(p in kept for p in m.split(" ", 1))]
    d, n_head, n_kv_head, ff = 32, 2, 1, 32
    shrunk = {"llama.block_count": 1, "llama.embedding_length": d,
              "llama.feed_forward_length": ff, "llama.attention.head_count": n_head,
              "llama.attention.head_count_kv": n_kv_head, "llama.vocab_size": n_keep,
              "llama.rope.dimension_count": d // n_head}
    kv = []
    for key, t, v in real.kv:
        if key in shrunk:
            v = shrunk[key]
        elif key == "tokenizer.ggml.tokens":
            v = (T_STRING, tokens)
        elif key == "tokenizer.ggml.token_type":
            v = (v[0], v[1][:n_keep])
        elif key == "tokenizer.ggml.merges":
            v = (T_STRING, merges)
        kv.append((key, t, v))
    bpe_tied = gguf_bytes(kv, tiny_llama_tensors(real, [GGML_Q4_1, GGML_Q8_0], n_keep, d,
                                                 d // n_head * n_kv_head, ff, tied=True))
    # The same with every other tensor type, an output matrix and linear RoPE scaling.
    kv_scaled = kv + [("llama.rope.scaling.type", T_STRING, "linear"),
                      ("llama.rope.scaling.factor", T_F32, 2.0)]
    bpe_untied = gguf_bytes(kv_scaled, tiny_llama_tensors(
        real, [GGML_F16, GGML_Q4_0, GGML_F32, GGML_Q8_0], n_keep, d, d // n_head * n_kv_head,
        ff, tied=False), alignment=64)

    # SentencePiece (tokenizer.ggml.model = llama): byte tokens, pieces with scores.
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    words = ["\u2581", "t", "h", "e", "o", "n", "l", "i", "g", "s", "\u2581t", "he",
             "\u2581the", "\u2581on", "\u2581l", "ig", "ht", "\u2581light", "\u2581lights"]
    pieces += words
    types = [2, 3, 3] + [6] * 256 + [1] * len(words)
    scores = [0.0] * (3 + 256) + [-float(i) for i in range(len(words))]
    spm_kv = [(k, t, v) for k, t, v in kv if not k.startswith("tokenizer.")]
    spm_kv = [(k, t, len(pieces) if k == "llama.vocab_size" else v) for k, t, v in spm_kv]
    spm_kv += [("tokenizer.ggml.model", T_STRING, "llama"),
               ("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, pieces)),
               ("tokenizer.ggml.scores", T_ARRAY, (T_F32, scores)),
               ("tokenizer.ggml.token_type", T_ARRAY, (5, types)),
               ("tokenizer.ggml.bos_token_id", T_U32, 1),
               ("tokenizer.ggml.eos_token_id", T_U32, 2),
               ("tokenizer.ggml.unknown_token_id", T_U32, 0),
               ("tokenizer.ggml.add_bos_token", T_BOOL, True),
               ("tokenizer.chat_template", T_STRING,
                "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]"
                "{% endfor %}")]
    spm = gguf_bytes(spm_kv, tiny_llama_tensors(real, [GGML_Q8_0, GGML_F16], len(pieces), d,
                                                d // n_head * n_kv_head, ff, tied=True))
    with open(path, "rb") as f:
        head = f.read(16 << 10)
    for target in ("gguf_header", "gguf_model"):
        out = out_dir(target)
        write(out, "smollm2_tiny_bpe_tied.gguf", bpe_tied)
        write(out, "smollm2_tiny_bpe_untied.gguf", bpe_untied)
        write(out, "tiny_spm.gguf", spm)
        write(out, "smollm2_head_16k.gguf", head)


# ------------------------------------------------------------------------------ CTranslate2

# tiny.en's dimensions and the tiny ones that replace them (one layer, 6 heads kept).
CT2_SHRINK = {384: 12, 1536: 48, 1152: 36, 768: 24, 80: 4, 1500: 6, 448: 5, 51864: 10}
CT2_DTYPE_SIZE = {0: 4, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2}


def read_ct2(path):
    """[(name, shape, dtype, data)] and [(alias, target)] of a model.bin."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("<H")
        s = buf[pos:pos + n].rstrip(b"\0").decode()
        pos += n
        return s

    assert take("<I") == 6
    spec, revision = string(), take("<I")
    variables = []
    for _ in range(take("<I")):
        name = string()
        shape = [take("<I") for _ in range(take("<B"))]
        dtype, n = take("<B"), take("<I")
        variables.append((name, shape, dtype, buf[pos:pos + n]))
        pos += n
    aliases = [(string(), string()) for _ in range(take("<I"))]
    return spec, revision, variables, aliases


def ct2_string(s):
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def tiny_ct2(models):
    """The one-layer model: [(name, shape, dtype, data)], aliases, and the raw model."""
    spec, revision, variables, aliases = read_ct2(os.path.join(models, "tiny.en", "model.bin"))
    tiny = []
    for name, shape, dtype, data in variables:
        if re.search(r"/layer_[1-9]", name):
            continue
        shape = [CT2_SHRINK.get(x, x) for x in shape]
        n = 1
        for x in shape:
            n *= x
        tiny.append((name, shape, dtype, data[:n * CT2_DTYPE_SIZE[dtype]]))
    return tiny, ct2_bytes(spec, revision, tiny, aliases), (spec, revision, aliases)


def ct2_bytes(spec, revision, variables, aliases):
    out = struct.pack("<I", 6) + ct2_string(spec) + struct.pack("<II", revision, len(variables))
    for name, shape, dtype, data in variables:
        out += ct2_string(name) + struct.pack("<B", len(shape))
        out += b"".join(struct.pack("<I", x) for x in shape)
        out += struct.pack("<BI", dtype, len(data)) + data
    out += struct.pack("<I", len(aliases))
    out += b"".join(ct2_string(a) + ct2_string(t) for a, t in aliases)
    return out


def ct2_int8(variables):
    """The variables with every f16 weight quantized as CTranslate2's `--quantization int8`
    does: per output row scale = 127 / max|w| (127 for a zero row), q = round(w * scale)
    (ties to even), stored as int8 beside `<name>_scale` (f32)."""
    out = []
    for name, shape, dtype, data in variables:
        if not (name.endswith("weight") and dtype == 4 and shape):
            out.append((name, shape, dtype, data))
            continue
        values = struct.unpack(f"<{len(data) // 2}e", data)
        cols = len(values) // shape[0]
        q, scales = [], []
        for r in range(shape[0]):
            row = values[r * cols:(r + 1) * cols]
            amax = max((abs(v) for v in row), default=0.0)
            scale = 127.0 / amax if amax else 127.0
            q += [max(-128, min(127, round(v * scale))) for v in row]
            scales.append(scale)
        out.append((name, shape, 1, struct.pack(f"<{len(q)}b", *q)))
        out.append((name + "_scale", [shape[0]], 0, struct.pack(f"<{len(scales)}f", *scales)))
    return out


def seeds_ct2(models):
    tiny, model, (spec, revision, aliases) = tiny_ct2(models)
    d = out_dir("ct2_model")
    write(d, "tiny_en_1layer.bin", model)
    write(d, "tiny_en_1layer_int8.bin", ct2_bytes(spec, revision, ct2_int8(tiny), aliases))
    with open(os.path.join(models, "tiny.en", "model.bin"), "rb") as f:
        write(d, "tiny_en_head_4k.bin", f.read(4096))

    d = out_dir("ct2_vocabulary")
    with open(os.path.join(models, "tiny.en", "vocabulary.txt"), "rb") as f:
        vocab = f.read()
    lines = vocab.split(b"\n")
    eot = lines.index(b"<|endoftext|>")
    write(d, "tiny_en_head_specials.txt", b"\n".join(lines[:300] + lines[eot:]))
    write(d, "tiny_en_head_4k.txt", vocab[:4096])
    with open(os.path.join(models, "base", "vocabulary.txt"), "rb") as f:
        lines = f.read().split(b"\n")
    eot = lines.index(b"<|endoftext|>")
    write(d, "base_head_specials.txt", b"\n".join(lines[:300] + lines[eot:]))


# ------------------------------------------------------------------------------------ ggml


def ggml_tensor(name, shape, ty, data):
    """shape outermost first, as the reader reports it; written innermost first."""
    b = name.encode()
    out = struct.pack("<iii", len(shape), len(b), ty)
    out += b"".join(struct.pack("<i", x) for x in reversed(shape)) + b + data
    return out


def to_f32(dtype, data):
    if dtype == 0:
        return list(struct.unpack("<%df" % (len(data) // 4), data))
    return list(struct.unpack("<%de" % (len(data) // 2), data))


def seeds_ggml(models):
    tiny, _, _ = tiny_ct2(models)
    v = {name: (shape, to_f32(dtype, data)) for name, shape, dtype, data in tiny
         if dtype in (0, 4)}
    s, n_mels, ctx_a, ctx_t, n_vocab = 12, 4, 6, 5, 10
    tensors = []

    def put(name, shape, values, f16=False):
        ty = 1 if f16 else 0
        data = f16_bytes(values) if f16 else struct.pack("<%df" % len(values), *values)
        tensors.append(ggml_tensor(name, shape, ty, data))

    def norm(ggml, ct2):
        put(ggml + ".weight", [s], v[ct2 + "/gamma"][1])
        put(ggml + ".bias", [s], v[ct2 + "/beta"][1])

    def linear(ggml, ct2, rows, f16, bias=True):
        put(ggml + ".weight", [rows, s], v[ct2 + "/weight"][1][:rows * s], f16)
        if bias:
            put(ggml + ".bias", [rows], v[ct2 + "/bias"][1][:rows])

    put("encoder.conv1.weight", [s, n_mels, 3], v["encoder/conv1/weight"][1])
    put("encoder.conv1.bias", [s, 1], v["encoder/conv1/bias"][1])
    put("encoder.conv2.weight", [s, s, 3], v["encoder/conv2/weight"][1])
    put("encoder.conv2.bias", [s, 1], v["encoder/conv2/bias"][1])
    put("encoder.positional_embedding", [ctx_a, s], v["encoder/position_encodings/encodings"][1])
    for side, ct2_side in (("encoder", "encoder"), ("decoder", "decoder")):
        f16 = side == "decoder"
        p, c = side + ".blocks.0", ct2_side + "/layer_0"
        norm(p + ".attn_ln", c + "/self_attention/layer_norm")
        for part, has_bias in (("query", True), ("key", False), ("value", True)):
            linear("%s.attn.%s" % (p, part), c + "/self_attention/linear_0", s, f16, has_bias)
        linear(p + ".attn.out", c + "/self_attention/linear_1", s, f16)
        if side == "decoder":
            norm(p + ".cross_attn_ln", c + "/attention/layer_norm")
            linear(p + ".cross_attn.query", c + "/attention/linear_0", s, f16)
            linear(p + ".cross_attn.key", c + "/attention/linear_1", s, f16, False)
            linear(p + ".cross_attn.value", c + "/attention/linear_1", s, f16)
            linear(p + ".cross_attn.out", c + "/attention/linear_2", s, f16)
        norm(p + ".mlp_ln", c + "/ffn/layer_norm")
        linear(p + ".mlp.0", c + "/ffn/linear_0", 4 * s, f16)
        put(p + ".mlp.2.weight", [s, 4 * s], v[c + "/ffn/linear_1/weight"][1], f16)
        put(p + ".mlp.2.bias", [s], v[c + "/ffn/linear_1/bias"][1])
    norm("encoder.ln_post", "encoder/layer_norm")
    put("decoder.token_embedding.weight", [n_vocab, s], v["decoder/embeddings/weight"][1], True)
    put("decoder.positional_embedding", [ctx_t, s], v["decoder/position_encodings/encodings"][1])
    norm("decoder.ln", "decoder/layer_norm")

    # Mel filters: 4 triangles over the 201 bins of a 400-point FFT.
    filters = []
    for m in range(n_mels):
        lo, hi = 10 + 40 * m, 10 + 40 * (m + 2)
        mid = (lo + hi) / 2
        filters += [max(0.0, 1 - abs(k - mid) / (mid - lo)) * 0.01 for k in range(201)]
    with open(os.path.join(models, "tiny.en", "vocabulary.txt"), encoding="utf-8") as f:
        words = f.read().split("\n")[:200]
    decode = {c: b for b, c in gpt2_byte_alphabet().items()}
    vocab = [bytes(decode[c] for c in w) for w in words]

    def header(n_vocab_field):
        dims = [n_vocab_field, ctx_a, s, 6, 1, ctx_t, s, 6, 1, n_mels, 1]
        out = struct.pack("<I", 0x67676D6C) + b"".join(struct.pack("<i", x) for x in dims)
        out += struct.pack("<ii", n_mels, 201) + struct.pack("<%df" % len(filters), *filters)
        out += struct.pack("<i", len(vocab))
        out += b"".join(struct.pack("<i", len(t)) + t for t in vocab)
        return out

    d = out_dir("ggml_model")
    write(d, "tiny_1layer.bin", header(n_vocab) + b"".join(tensors))
    # Whisper's English vocabulary size: the tokenizer's checks of the token count.
    write(d, "tiny_1layer_n_vocab_51864.bin", header(51864) + b"".join(tensors[:4]))


def gpt2_byte_alphabet():
    """GPT-2's byte-to-unicode table, as the vocabulary files spell bytes."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
                 + list(range(ord("\xae"), ord("\xff") + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


# ----------------------------------------------------------------------- grammars, config


def seeds_text():
    grammars = [os.path.join(ROOT, "grammars", g) for g in sorted(os.listdir(
        os.path.join(ROOT, "grammars")))]
    grammars.append(os.path.join(ROOT, "tests", "fixtures", "daemon", "grammar.toml"))
    d = out_dir("grammar")
    templates = set()
    for g in grammars:
        with open(g, "rb") as f:
            text = f.read()
        name = os.path.basename(os.path.dirname(g)) + "_" + os.path.basename(g)
        write(d, name, text)
        # Every quoted string that looks like a sentence template.
        for t in re.findall(rb'"((?:[^"\\\n]|\\.)*)"', text):
            if any(c in t for c in b"([{<") or b" " in t:
                templates.add(t)
    d = out_dir("grammar_template")
    for t in sorted(templates):
        write(d, hashlib.sha1(t).hexdigest()[:12] + ".txt", t)
    d = out_dir("config")
    shutil.copy(os.path.join(ROOT, "config.toml"), os.path.join(d, "config.toml"))
    shutil.copy(os.path.join(ROOT, "tests", "fixtures", "daemon", "config.toml"),
                os.path.join(d, "daemon_test_config.toml"))


# --------------------------------------------------------------------------------- Wyoming

def wyoming_event(kind, data=None, payload=b"", inline=False):
    """One event on the wire: a JSON header line, then the data as extra data (or inside
    the header when `inline`), then the payload."""
    header = {"type": kind, "version": "1.10.2"}
    extra = b""
    if data is not None and inline:
        header["data"] = data
    elif data is not None:
        extra = json.dumps(data).encode()
        header["data_length"] = len(extra)
    if payload:
        header["payload_length"] = len(payload)
    return json.dumps(header).encode() + b"\n" + extra + payload


def seeds_wyoming():
    d = out_dir("wyoming")
    clip = sorted(c for c in os.listdir(os.path.join(ROOT, "tests", "fixtures", "clips"))
                  if c.endswith(".wav"))[0]
    with wave.open(os.path.join(ROOT, "tests", "fixtures", "clips", clip)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000
        w.setpos(w.getnframes() // 3)
        raw = w.readframes(1600)  # 0.1 s
    s16 = struct.unpack("<%dh" % (len(raw) // 2), raw)
    # The same sound as 32-bit 48 kHz stereo (each sample three times, both channels).
    s32_48k = struct.pack("<%di" % (6 * len(s16)), *(x << 16 for x in s16 for _ in range(6)))

    def session(fmt, pcm, chunks, inline):
        events = [wyoming_event("transcribe", {"language": "en"}, inline=inline),
                  wyoming_event("audio-start", fmt, inline=inline)]
        step = len(pcm) // chunks // (fmt["width"] * fmt["channels"]) * (
            fmt["width"] * fmt["channels"])
        for at in range(0, len(pcm), step):
            events.append(wyoming_event("audio-chunk", fmt, pcm[at:at + step], inline=inline))
        events.append(wyoming_event("audio-stop", {}, inline=inline))
        return b"".join(events)

    mono = {"rate": 16000, "width": 2, "channels": 1}
    stereo = {"rate": 48000, "width": 4, "channels": 2}
    write(d, "describe", wyoming_event("describe"))
    write(d, "transcribe_16k_s16", session(mono, raw, 2, inline=False))
    write(d, "transcribe_16k_s16_inline", session(mono, raw, 2, inline=True))
    write(d, "transcribe_48k_s32_stereo", session(stereo, s32_48k[:4800 * 8], 3, inline=False))
    write(d, "recognize_and_handle", b"".join([
        wyoming_event("describe"),
        wyoming_event("recognize", {"text": "set a timer for five minutes"}),
        wyoming_event("intent", {"name": "HassStartTimer",
                                 "entities": [{"name": "minutes", "value": 5}]}),
        wyoming_event("transcript", {"text": "what time is it"}, inline=True),
        wyoming_event("ping", {"text": "x"}),
    ]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=os.path.join(ROOT, "models"),
                    help="the installed models (tiny.en, base, smollm2)")
    args = ap.parse_args()
    seeds_wav()
    seeds_gguf(args.models)
    seeds_ct2(args.models)
    seeds_ggml(args.models)
    seeds_text()
    seeds_wyoming()
    total = 0
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        total += size
        print("%-18s %3d files %8d bytes" % (target, len(files), size))
    print("%-18s %18d bytes" % ("total", total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
