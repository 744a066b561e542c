#!/usr/bin/env python3
"""Measure what the audio front end costs: CPU as % of one core and memory, on 48 kHz stereo.

Two kinds of run, each repeated (best and median are reported):

  live     `voxd listen` captures from the virtual microphone (scripts/env/vmic.sh) at 48 kHz
           stereo while a file plays into it in real time, exactly as in the daemon, through
           each capture API of --backends: `pulse` (the sound server's own API) and `cpal`
           (cpal -> ALSA -> ALSA's PulseAudio plugin). CPU is voxd's own user+system time (from /proc) over the steady part
           of the run (after the first 3 s) divided by the wall time: % of one core, for the
           whole process (the capture threads included) and for the front-end thread alone (resampling, VAD, segmentation).
           RSS is sampled every second; "flat" means its growth after the first 3 s.
             idle microphone:   nothing played; the virtual microphone streams digital silence
             room noise played: white noise at -70 dBFS RMS played into it
             speech played:     the segmentation test file (commands with pauses)
             daemon:            `voxd run` (tiny.en, the home grammar) on the idle
                                microphone: the whole daemon's cost in a quiet room, measured
                                after its first 10 s (loading and warm-up)
           Playing a file makes PulseAudio hand the monitor source's audio over in small
           pieces, which costs ALSA's PulseAudio plugin and cpal's ALSA thread far more
           wake-ups than a microphone's steady stream: compare the front-end thread's own
           share, which is the same in every case.
  batch    `voxd listen --wav` on the 10-minute 48 kHz stereo file, as fast as possible:
           user+system CPU seconds per second of audio (the same code, without pacing), and
           the RSS range over the run (sampled every 20 ms after the first 0.5 s): flat
           means the front end keeps no history.

Needs scripts/setup.sh (PulseAudio), a release build, and the segmentation data
(scripts/data/make_segmentation.py --long 10, made here if missing).

Usage: scripts/bench/bench_frontend.py [--runs N] [--seconds S] [--markdown] [--backends ...]
"""
import argparse
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOXD = ROOT / "target" / "release" / "voxd"
SEG = ROOT / "data" / "segmentation"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
WARMUP_S = 3.0
DAEMON_WARMUP_S = 10.0


def log(msg):
    print(f"bench_frontend: {msg}", file=sys.stderr, flush=True)


def cpu_seconds(stat_path):
    fields = pathlib.Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def cpu_split(pid):
    """(whole process, front-end thread) CPU seconds so far."""
    front_end = 0.0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "comm").read_text().strip() == "voxd-frontend":
                front_end += cpu_seconds(task / "stat")
        except (FileNotFoundError, ProcessLookupError):
            pass
    return cpu_seconds(f"/proc/{pid}/stat"), front_end


def rss_kb(pid):
    return int(pathlib.Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB


def make_silence(path, seconds):
    """White noise at -70 dBFS RMS, 48 kHz stereo 16-bit: a quiet room through a microphone."""
    import random
    import struct
    import wave

    rng = random.Random(7)
    amp = 10 ** (-70 / 20) * 32768
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        block = bytearray()
        for _ in range(48000 * int(seconds)):
            a = int(rng.gauss(0, amp))
            block += struct.pack("<hh", a, a)
        w.writeframes(bytes(block))


def vmic(verb, run_dir, *args):
    subprocess.run([str(ROOT / "scripts" / "env" / "vmic.sh"), verb, str(run_dir), *map(str, args)],
                   check=True, stdout=subprocess.DEVNULL)


def listen_command(backend, seconds):
    return [str(VOXD), "listen", "--backend", backend, "--rate", "48000", "--channels", "2",
            "--seconds", str(seconds)]


def daemon_command(backend):
    """The daemon as a user runs it for commands: tiny.en and the home grammar; its warm-up
    (loading, a first decode) ends well within DAEMON_WARMUP_S."""
    return [str(VOXD), "run", "--model", str(ROOT / "models" / "tiny.en"),
            "--grammar", str(ROOT / "grammars" / "home.toml"), "--backend", backend,
            "--rate", "48000", "--channels", "2", "--stdout", "off", "--no-watch"]


def live_run(wav, seconds, backend, daemon=False):
    """One live capture of `wav` through `backend` by `voxd listen`, or by `voxd run` with
    `daemon`; returns (process cpu %, front-end thread cpu %, rss min kB, rss max kB, rss
    growth kB)."""
    warmup = DAEMON_WARMUP_S if daemon else WARMUP_S
    with tempfile.TemporaryDirectory() as run_dir:
        vmic("start", run_dir)
        env = dict(os.environ)
        for line in pathlib.Path(run_dir, "env").read_text().splitlines():
            key, value = line.split("=", 1)
            env[key] = value
        try:
            command = daemon_command(backend) if daemon else listen_command(backend, seconds)
            listener = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
            # No file: the virtual microphone's own stream of silence, as an idle microphone.
            player = subprocess.Popen(
                [str(ROOT / "scripts" / "env" / "vmic.sh"), "play", run_dir, str(wav)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if wav else None
            start = time.monotonic()
            samples = []  # (t, process cpu s, front-end cpu s, rss kB)
            while listener.poll() is None:
                if daemon and time.monotonic() - start > warmup + seconds:
                    listener.terminate()
                    listener.wait()
                    break
                try:
                    samples.append((time.monotonic() - start, *cpu_split(listener.pid),
                                    rss_kb(listener.pid)))
                except (FileNotFoundError, ProcessLookupError, IndexError):
                    break
                time.sleep(1.0)
            if player:
                player.kill()
                player.wait()
        finally:
            vmic("stop", run_dir)
    # A sample taken while the process exits may miss the front-end thread: drop it.
    steady = [s for s in samples if s[0] >= warmup and s[2] > 0]
    if len(steady) < 2:
        raise RuntimeError("the live run ended too early (is PulseAudio set up?)")
    (t0, c0, f0, r0), (t1, c1, f1, _) = steady[0], steady[-1]
    rss = [s[3] for s in steady]
    span = t1 - t0
    return (100.0 * (c1 - c0) / span, 100.0 * (f1 - f0) / span, min(rss), max(rss),
            rss[-1] - r0)


def batch_run(wav):
    """One as-fast-as-possible pass; returns (cpu s per audio s, audio s, RSS samples kB).
    RSS is sampled every 20 ms after the first half second, to show it stays flat."""
    import json

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Events go to a file: a pipe nobody reads during the run would fill and stop voxd.
    events = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([str(VOXD), "listen", "--wav", str(wav)],
                            stdout=events, stderr=subprocess.DEVNULL, text=True)
    start, rss = time.monotonic(), []
    while proc.poll() is None:
        try:
            if time.monotonic() - start >= 0.5:
                rss.append(rss_kb(proc.pid))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            break
        time.sleep(0.02)
    proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    events.seek(0)
    finished = json.loads(events.read().strip().splitlines()[-1])
    audio_s = finished["audio_ms"] / 1000
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / audio_s, audio_s, rss

def retried(run, attempts=3):
    """A live run can fail to start on a loaded machine (the server or voxd slow to come up):
    try again, and give up after `attempts`."""
    for attempt in range(1, attempts + 1):
        try:
            return run()
        except RuntimeError as e:
            if attempt == attempts:
                raise SystemExit(f"bench_frontend: {e}")
            log(f"{e}; retrying")


def best_median(values, lowest=True):
    best = min(values) if lowest else max(values)
    return best, statistics.median(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each live run")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--backends", nargs="+", default=["pulse", "cpal"],
                    help="capture APIs to measure (voxd listen --backend)")
    args = ap.parse_args()
    if not VOXD.exists():
        raise SystemExit("bench_frontend: build first: cargo build --release")
    if not (SEG / "long_48k_stereo.wav").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "data" / "make_segmentation.py"),
                        "--long", "10"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        silence = pathlib.Path(tmp) / "silence_48k_stereo.wav"
        make_silence(silence, args.seconds + 10)
        rows = []
        cases = [("idle microphone", None, False), ("room noise played", silence, False),
                 ("speech played", SEG / "clean_48k_stereo.wav", False),
                 ("daemon (voxd run, tiny.en), idle microphone", None, True)]
        for (name, wav, daemon), backend in ((c, b) for c in cases for b in args.backends):
            runs = []
            name = f"{name} ({backend})"
            for i in range(args.runs):
                runs.append(retried(lambda: live_run(wav, args.seconds, backend, daemon)))
                log(f"live {name} run {i + 1}: {runs[-1][0]:.2f} % of a core "
                    f"(front-end thread {runs[-1][1]:.2f} %), RSS {runs[-1][2]}-{runs[-1][3]} kB")
            cpu_best, cpu_median = best_median([r[0] for r in runs])
            fe_best, fe_median = best_median([r[1] for r in runs])
            rss_lo = min(r[2] for r in runs)
            rss_hi = max(r[3] for r in runs)
            growth = max(r[4] for r in runs)
            memory = f"{rss_lo / 1024:.1f}-{rss_hi / 1024:.1f} MB (+{growth} kB)"
            rows.append((f"live, {name}: whole process", f"{cpu_best:.2f} %",
                         f"{cpu_median:.2f} %", memory))
            rows.append((f"live, {name}: front-end thread", f"{fe_best:.2f} %",
                         f"{fe_median:.2f} %", ""))
        batch = [batch_run(SEG / "long_48k_stereo.wav") for _ in range(args.runs)]
        cost_best, cost_median = best_median([b[0] for b in batch])
        rss = [r for b in batch for r in b[2]]
        memory = (f"{min(rss) / 1024:.1f}-{max(rss) / 1024:.1f} MB over the run"
                  if rss else "too fast to sample")
        rows.append((f"batch, {batch[0][1] / 60:.0f} min as fast as possible",
                     f"{100 * cost_best:.2f} %", f"{100 * cost_median:.2f} %", memory))
    header = ("run (48 kHz stereo in)", "CPU best", "CPU median", "memory (RSS)")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in [header, *rows]:
            print(f"{r[0]:<40} {r[1]:>10} {r[2]:>11}  {r[3]}")
    print(f"\nCPU is % of one core ({args.runs} runs, {args.seconds:.0f} s live each); "
          "memory growth is over the steady part of the live runs.")


if __name__ == "__main__":
    main()
