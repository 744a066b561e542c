#!/usr/bin/env python3
"""Make a quantized CTranslate2 Whisper directory from an installed one, with CTranslate2's
own converter code (its WhisperSpec and the quantization `ct2-transformers-converter
--quantization` applies), for voxd's tests and benchmarks of int8 CTranslate2 models.

  scripts/reference/ct2_quantize.py SRC DEST [--quantization int8]

SRC is a CTranslate2 Whisper directory (models/tiny.en: float16 weights); DEST gets what the
converter writes (model.bin, config.json, vocabulary.json) plus SRC's tokenizer.json, which
faster-whisper reads. `--quantization` takes the converter's types (int8, int8_float16,
int8_float32, ...; default int8). The weights are SRC's float16 values: the original
checkpoint's float32 values are not at hand offline, so int8 is rounded from float16 (the
converter run on the Hugging Face checkpoint rounds from float32; the two can differ by one
step in a few values). DEST is written under a temporary name and renamed when complete; an
existing DEST is left alone. Reference tools only: runs with .venv's python (re-executing
itself there when the current one lacks ctranslate2).
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

try:
    import numpy as np
    from ctranslate2.specs import model_spec, whisper_spec
except ImportError:  # fall back to the reference venv, once
    venv_py = ROOT / ".venv" / "bin" / "python"
    if venv_py.exists() and os.environ.get("VOXD_REFERENCE_REEXEC") != "1":
        os.environ["VOXD_REFERENCE_REEXEC"] = "1"
        os.execv(str(venv_py), [str(venv_py), __file__] + sys.argv[1:])
    sys.exit("ct2_quantize: needs ctranslate2 (run scripts/setup.sh --reference)")

# model.bin's data type codes (CTranslate2's DataType enum).
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_model_bin(path):
    """The variables (name -> numpy array) and aliases (alias -> name) of a model.bin."""
    data = path.read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        (value,) = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value

    def string():
        nonlocal pos
        n = take("H")
        text = data[pos:pos + n].rstrip(b"\0").decode()
        pos += n
        return text

    version = take("I")
    if version != model_spec.CURRENT_BINARY_VERSION:
        sys.exit(f"ct2_quantize: {path}: binary version {version}, expected "
                 f"{model_spec.CURRENT_BINARY_VERSION}")
    spec_name, _revision = string(), take("I")
    if spec_name != "WhisperSpec":
        sys.exit(f"ct2_quantize: {path}: a {spec_name}, not a Whisper model")
    variables = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype, size = DTYPES[take("B")], take("I")
        values = np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize,
                               offset=pos)
        variables[name] = values.reshape(shape).copy()
        pos += size
    aliases = {string(): string() for _ in range(take("I"))}
    return variables, aliases


def layer_count(variables, part):
    """The number of layers `part` (encoder or decoder) has: `part/layer_N/...` names."""
    pattern = re.compile(re.escape(part) + r"/layer_(\d+)/")
    return len({m.group(1) for m in map(pattern.match, variables) if m})


def fill_spec(variables, aliases):
    """A WhisperSpec holding the given variables under their names."""
    spec = whisper_spec.WhisperSpec(
        layer_count(variables, "encoder"), int(variables["encoder/num_heads"]),
        layer_count(variables, "decoder"), int(variables["decoder/num_heads"]))
    names = []
    model_spec.visit_spec(spec, lambda _spec, name, _value: names.append(name))
    for name in names:
        source = aliases.get(name, name)
        if source in variables:
            scope, attr = model_spec._parent_scope(name)
            setattr(model_spec.index_spec(spec, scope), attr, variables[source])
    return spec


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=pathlib.Path)
    parser.add_argument("dest", type=pathlib.Path)
    parser.add_argument("--quantization", default="int8",
                        choices=model_spec.ACCEPTED_MODEL_TYPES)
    args = parser.parse_args()
    if (args.dest / "model.bin").exists():
        print(f"ct2_quantize: {args.dest} exists, left alone", file=sys.stderr)
        return
    variables, aliases = read_model_bin(args.src / "model.bin")
    spec = fill_spec(variables, aliases)
    config = json.loads((args.src / "config.json").read_text())
    for key, value in config.items():
        spec.config.add_attribute(key, value)
    tokens = (args.src / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    if tokens[-1] == "":
        tokens.pop()
    spec.register_vocabulary(tokens)
    spec.validate()
    spec.optimize(quantization=args.quantization)

    temp = args.dest.with_name(f".{args.dest.name}.{os.getpid()}.partial")
    temp.mkdir(parents=True)
    spec.save(str(temp))
    shutil.copy(args.src / "tokenizer.json", temp / "tokenizer.json")
    temp.rename(args.dest)
    print(f"ct2_quantize: wrote {args.dest} ({args.quantization})", file=sys.stderr)


if __name__ == "__main__":
    main()
