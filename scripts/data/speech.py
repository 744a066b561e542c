"""Shared helpers for the scripts that make voxd's synthetic speech test data.

Used by scripts/data/make_clips.py (short committed clips),
scripts/data/make_segmentation.py (long files for the audio front end's segmentation tests) and
the other make_*.py scripts. Everything here is deterministic: espeak-ng and sox run with fixed
options (sox in repeatable mode, no dither) and noise comes from numpy's PCG64 generator with
an explicit seed, so the same inputs give the same samples on the same machine and package
versions.

Importing this module needs numpy. When the running python has none, the module re-runs the
calling script once with the repository's .venv python (`scripts/setup.sh --reference` makes
.venv/), so `python3 scripts/data/make_clips.py` works on a machine whose system python lacks numpy.
"""
import os
import pathlib
import subprocess
import sys
import wave

ROOT = pathlib.Path(__file__).resolve().parents[2]
_SCRIPT = pathlib.Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None

try:
    import numpy as np
except ImportError:  # fall back to the reference venv, once
    _venv_py = ROOT / ".venv" / "bin" / "python"
    if _SCRIPT is not None and _venv_py.exists() and os.environ.get("VOXD_VENV_REEXEC") != "1":
        os.environ["VOXD_VENV_REEXEC"] = "1"
        os.execv(str(_venv_py), [str(_venv_py), str(_SCRIPT)] + sys.argv[1:])
    _name = _SCRIPT.stem if _SCRIPT is not None else "speech"
    sys.exit(f"{_name}: needs numpy (run scripts/setup.sh --reference to create .venv/)")

# Sample rate of everything the helpers return and of the 16-bit WAVs they write.
RATE = 16000
# Samples whose magnitude is below this fraction of the peak count as silence when trimming.
TRIM_FRACTION = 0.01
# Noise kinds `noise()` makes, with the exponent of 1/f in their amplitude spectrum.
NOISE_EXPONENTS = {"white": 0.0, "pink": 0.5, "brown": 1.0}


def slug(text, n=5):
    """File-name-friendly form of the first n words of text."""
    words = "".join(c if c.isalnum() or c == " " else " " for c in text.lower()).split()
    return "_".join(words[:n])


def espeak_version():
    """espeak-ng's version line (without the data path), recorded in the manifests."""
    out = subprocess.run(["espeak-ng", "--version"], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    return out.split("Data at")[0].strip()


def speak(text, voice, wpm, tmp):
    """text spoken by espeak-ng as float64 samples at RATE (untrimmed, espeak's own level).

    espeak-ng writes 22050 Hz 16-bit to tmp/espeak.wav; sox resamples it to RATE in its
    repeatable mode (-R) without dither (-D) so the result is the same on every run.
    """
    wav = pathlib.Path(tmp) / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text], check=True)
    return _resampled(wav)


def speak_flite(text, voice, stretch, tmp):
    """text spoken by flite (a unit-selection / clustergen voice: closer to a human speaker
    than espeak-ng's formant synthesis) as float64 samples at RATE, untrimmed. stretch > 1
    speaks slower."""
    wav = pathlib.Path(tmp) / "flite.wav"
    subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}",
                    "-t", text, "-o", str(wav)], check=True)
    return _resampled(wav)


def _resampled(wav):
    """A WAV file as float64 samples at RATE: sox in repeatable mode (-R), no dither (-D)."""
    raw = subprocess.run(
        ["sox", "-R", "-D", "-V1", str(wav), "-t", "raw", "-e", "floating-point", "-b", "32",
         "-c", "1", "-L", "-", "rate", "-v", str(RATE)],
        check=True, stdout=subprocess.PIPE).stdout
    return np.frombuffer(raw, dtype="<f4").astype(np.float64)


def trim(x):
    """x without its leading and trailing samples below TRIM_FRACTION of its peak."""
    thr = TRIM_FRACTION * np.max(np.abs(x))
    idx = np.flatnonzero(np.abs(x) > thr)
    if idx.size == 0:
        raise RuntimeError("the speech synthesizer produced silence")
    return x[idx[0]: idx[-1] + 1]


def noise(kind, n, seed):
    """Unit-power noise of the given colour (white, pink or brown), n samples at RATE.

    Gaussian white noise from PCG64(seed), shaped in the frequency domain: the amplitude is
    divided by f^0.5 for pink (power ~ 1/f) and by f for brown (power ~ 1/f^2); DC is removed.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    w = rng.standard_normal(n)
    if kind == "white":
        y = w
    else:
        spec = np.fft.rfft(w)
        f = np.fft.rfftfreq(n, d=1.0 / RATE)
        f[0] = f[1]  # avoid dividing by zero; DC removed below
        spec = spec / f ** NOISE_EXPONENTS[kind]
        spec[0] = 0.0
        y = np.fft.irfft(spec, n)
    return y / np.sqrt(np.mean(y * y))


def to_pcm16(x):
    """Float samples (full scale 1.0) rounded to little-endian int16, clipped at full scale."""
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")


def write_wav(path, pcm, rate=RATE, channels=1):
    """Write int16 samples (interleaved when channels > 1) as a PCM 16-bit WAV."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def write_if_changed(path, data):
    """Write bytes to path unless it already holds exactly them; True when written."""
    path = pathlib.Path(path)
    if path.exists() and path.read_bytes() == data:
        return False
    path.write_bytes(data)
    return True
