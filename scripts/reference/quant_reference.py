#!/usr/bin/env python3
"""Dequantizes ggml blocks with gguf-py's numpy dequantizers (llama.cpp's `gguf` package), the
reference that tests/it/quant_reference.rs checks voxd's dequantizers against.

usage: .venv/bin/python scripts/reference/quant_reference.py TYPE FILE

TYPE is a ggml type name (F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K); FILE holds whole blocks of
that type. Prints the dequantized values, one per line, each as the shortest decimal that reads
back as the same float32.
"""

import sys

import numpy as np
from gguf import GGMLQuantizationType, quants


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    type_name, path = sys.argv[1:]
    qtype = GGMLQuantizationType[type_name]
    data = np.fromfile(path, dtype=np.uint8)
    values = quants.dequantize(data, qtype).astype(np.float32).ravel()
    # float32 → float64 is exact, and repr gives the shortest decimal that round-trips.
    sys.stdout.write("\n".join(repr(v) for v in values.astype(np.float64).tolist()))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
