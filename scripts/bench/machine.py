"""The machine a benchmark ran on, for every benchmark's header: the CPU's name, the SIMD
features voxd's kernels care about, and the kernel path voxd picked (`voxd bench --json`
reports it; `VOXD_KERNELS=avx2` makes an AVX-512 machine take the AVX2 path for an A/B run)."""

import platform
from pathlib import Path

# The /proc/cpuinfo flags that decide voxd's kernel path (x86 "flags", aarch64 "Features").
SIMD_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx_vnni", "asimd", "asimdhp", "asimddp")


def _cpuinfo():
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_name():
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def simd_flags():
    for line in _cpuinfo():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return " ".join(f for f in SIMD_FLAGS if f in have) or "none"
    return "unknown"


def describe(kernels):
    """One header line: CPU, its SIMD flags and voxd's kernel path."""
    return f"CPU {cpu_name()} (SIMD flags: {simd_flags()}); voxd kernels: {kernels or 'unknown'}"
