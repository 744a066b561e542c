#!/usr/bin/env python3
"""Transcribes WAV files with whisper.cpp (pywhispercpp, from the reference .venv/) on a ggml
model file, greedily, for tests/it/ggml.rs: the quantized files `voxd model convert --quant`
writes must load in whisper.cpp and transcribe as voxd does on them.

usage: .venv/bin/python scripts/reference/whispercpp_transcribe.py MODEL.bin WAV...

Prints one line per WAV: its whole text, segments joined by a space. Decoding: greedy (best_of 1), temperature 0 with no
fallback, language "en", no previous-text context, timestamps on, non-speech tokens
suppressed: the options voxd's greedy transcription uses. One thread: the text does not depend
on it, and whisper.cpp's threads spin at their barriers against the tests running beside it.
"""

import sys
import wave

import numpy as np


def read_wav(path: str) -> np.ndarray:
    with wave.open(path, "rb") as w:
        if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"{path}: expected 16 kHz mono 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    from pywhispercpp.model import Model

    model = Model(sys.argv[1], n_threads=1, print_progress=False, print_realtime=False,
                  print_timestamps=False, language="en", no_context=True,
                  no_timestamps=False, temperature=0.0, temperature_inc=0.0,
                  greedy={"best_of": 1}, suppress_nst=True, redirect_whispercpp_logs_to=None)
    for wav in sys.argv[2:]:
        segments = model.transcribe(read_wav(wav))
        # pywhispercpp strips each segment's text; words between segments need a space.
        print(" ".join(s.text.strip() for s in segments))


if __name__ == "__main__":
    main()
