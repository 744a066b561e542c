#!/usr/bin/env python3
"""Load on `voxd wyoming`: N clients at once, each streaming real commands at real time.

Run it from the repository root with the reference environment's Python (it needs the
`wyoming` package, pinned in scripts/reference/requirements-reference.txt):

    .venv/bin/python scripts/bench/bench_wyoming_load.py [--clients 1 2 4 8] [--rounds 5]
        [--model models/tiny.en] [--threads 2] [--voxd target/release/voxd] [--json FILE]

One server (`voxd wyoming`, speech to text, with `--model` and `--threads`) serves every
level. At each level N, N clients each send --rounds commands one after another: a
`transcribe`, then a recording from ../shared/data/real/commands (the `stp_*` ones, about
3 s each, taken in turn) as 16-bit 100 ms chunks paced at real time, then `audio-stop`.
Clients start at random offsets within the first second (seeded), as satellites would.

For each request it records the time from sending `audio-stop` to the `transcript`, or the
`error` event the server sent instead (a refusal over capacity: `busy` when the model's
queue is full, or the error of a client over `max_clients`), or a connection closed
without an answer (counted as a failure: it must not happen). Streamed
`transcript-chunk`s are read and counted, not timed.

Per level it prints p50 and p95 of those times in ms, the requests answered, refused and
failed, and the server's resident memory (VmRSS) after the level; last, the largest N
whose p95 stayed under 1 s. The server's own log goes to --log.

Side by side: `--servers voxd faster-whisper` runs the same levels against each server in
turn, `--repeat R` times (the order alternating), on the same model directory (a
CTranslate2 one: wyoming-faster-whisper reads it as is) and the same threads; it prints
every run, then per server and level the best and median of the runs' p50 and p95, and
voxd's medians as a fraction of the peer's.
"""

import argparse
import asyncio
import json
import random
import re
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error

CHUNK_MS = 100
READ_TIMEOUT_S = 120
GOAL_MS = 1000


def load_commands(folder):
    commands = []
    for path in sorted(Path(folder).glob("stp_*.wav")):
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise SystemExit(f"{path}: expected 16-bit samples")
            commands.append((path.name, wav.getframerate(), wav.getnchannels(),
                             wav.readframes(wav.getnframes())))
    if not commands:
        raise SystemExit(f"{folder}: no stp_*.wav recordings")
    return commands


async def one_request(uri, command):
    """One transcribe request; ("ok", ms, chunks) / ("refused", code, text) / ("failed", why)."""
    client = AsyncClient.from_uri(uri, read_timeout=READ_TIMEOUT_S)
    await client.connect()
    try:
        return await exchange(client, command)
    finally:
        try:
            await client.disconnect()
        except (ConnectionError, OSError):
            pass  # the server closed first (a refusal): nothing left to close


async def exchange(client, command):
    _name, rate, channels, frames = command
    answers = asyncio.Queue()

    async def read_all():
        while True:
            try:
                event = await client.read_event()
            except Exception as e:  # a reset or a timeout ends this request, not the run
                await answers.put(("gone", repr(e), time.monotonic()))
                return
            await answers.put(("event", event, time.monotonic()))
            if event is None or Transcript.is_type(event.type) or Error.is_type(event.type):
                return

    reader = asyncio.create_task(read_all())
    try:
        await client.write_event(Transcribe().event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
        step = rate * CHUNK_MS // 1000 * 2 * channels
        started = time.monotonic()
        for at in range(0, len(frames), step):
            chunk = AudioChunk(rate=rate, width=2, channels=channels,
                               audio=frames[at:at + step])
            await client.write_event(chunk.event())
            sent_s = (at + step) / (2 * channels * rate)
            await asyncio.sleep(max(0.0, started + sent_s - time.monotonic()))
        stopped = time.monotonic()
        await client.write_event(AudioStop().event())
    except (ConnectionError, OSError) as e:
        # Refused mid-stream (over max_clients): the error event, if any, is queued.
        stopped = None
        await answers.put(("gone", repr(e), time.monotonic()))
    chunks = 0
    while True:
        kind, event, at = await answers.get()
        if kind == "gone" or event is None:
            reader.cancel()
            return ("failed", f"closed without an answer ({event})")
        if Error.is_type(event.type):
            return ("refused", event.data.get("code"), event.data.get("text"))
        if TranscriptChunk.is_type(event.type):
            chunks += 1
        if Transcript.is_type(event.type):
            if stopped is None:
                return ("failed", "a transcript for audio never stopped")
            return ("ok", (at - stopped) * 1000, chunks)


async def client_loop(uri, commands, first, rounds, offset):
    await asyncio.sleep(offset)
    results = []
    for i in range(rounds):
        results.append(await one_request(uri, commands[(first + i) % len(commands)]))
    return results


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def start_server(kind, args, log):
    if kind == "faster-whisper":
        return start_faster_whisper(args, log)
    config = Path(tempfile.mkdtemp(prefix="voxd-wyoming-load-")) / "config.toml"
    config.write_text(
        "[transcribe]\nlanguage = \"en\"\n[actions]\nnotifications = false\n"
        f"[wyoming]\nmax_clients = {args.max_clients}\nqueue = {args.queue}\n")
    server = subprocess.Popen(
        [args.voxd, "--config", str(config), "wyoming", "--uri", "tcp://127.0.0.1:0",
         "-t", str(args.threads), "--model", args.model],
        stdout=subprocess.PIPE, stderr=log, text=True)
    line = server.stdout.readline()
    found = re.match(r"voxd wyoming: listening on (\S+)", line)
    if not found:
        server.kill()
        raise SystemExit(f"voxd wyoming did not start: {line!r} (log: {log.name})")
    return server, found.group(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_faster_whisper(args, log):
    """wyoming-faster-whisper (reference venv) on the same model and threads, offline."""
    uri = f"tcp://127.0.0.1:{free_port()}"
    data = tempfile.mkdtemp(prefix="faster-whisper-data-")
    server = subprocess.Popen(
        [sys.executable, "-m", "wyoming_faster_whisper", "--uri", uri, "--model", args.model,
         "--data-dir", data, "--stt-library", "faster-whisper", "--language", "en",
         "--local-files-only", "--cpu-threads", str(args.threads)],
        stdout=log, stderr=log)
    return server, uri


async def wait_ready(uri):
    """The model is loaded once a first (silent) request is answered."""
    silence = ("silence", 16000, 1, b"\0\0" * 16000)
    for _ in range(600):  # a server still starting refuses the connection
        try:
            outcome = await one_request(uri, silence)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        raise SystemExit(f"no server listens on {uri}")
    if outcome[0] != "ok":
        raise SystemExit(f"the server does not transcribe: {outcome}")


async def run_level(uri, commands, n, rounds, rng):
    loops = [client_loop(uri, commands, i * rounds, rounds, rng.random()) for i in range(n)]
    return [r for results in await asyncio.gather(*loops) for r in results]


def fmt(v):
    return "-" if v is None else f"{v:.0f}"


def run_server(kind, args, commands, rng, log):
    """Every level against one server of `kind`; the levels' results."""
    server, uri = start_server(kind, args, log)
    levels = []
    try:
        asyncio.run(wait_ready(uri))
        print(f"{kind}: {uri}", flush=True)
        print(f"{'clients':>7} {'p50 ms':>7} {'p95 ms':>7} {'answered':>8} {'refused':>7} "
              f"{'failed':>6} {'RSS MiB':>7}", flush=True)
        for n in args.clients:
            results = asyncio.run(run_level(uri, commands, n, args.rounds, rng))
            if server.poll() is not None:
                raise SystemExit(f"{kind} exited ({server.returncode}); log: {args.log}")
            times = [r[1] for r in results if r[0] == "ok"]
            refused = [r[1:] for r in results if r[0] == "refused"]
            failed = [r[1] for r in results if r[0] == "failed"]
            level = {"clients": n, "p50_ms": percentile(times, 50),
                     "p95_ms": percentile(times, 95), "answered": len(times),
                     "refused": len(refused), "refusal_codes": sorted({str(c) for c, _ in refused}),
                     "failed": failed, "rss_kib": rss_kib(server.pid),
                     "chunks": sum(r[2] for r in results if r[0] == "ok")}
            levels.append(level)
            print(f"{n:>7} {fmt(level['p50_ms']):>7} {fmt(level['p95_ms']):>7} "
                  f"{len(times):>8} {len(refused):>7} {len(failed):>6} "
                  f"{level['rss_kib'] / 1024:>7.1f}", flush=True)
            for why in failed:
                print(f"        failed: {why}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return levels


def summary(runs, servers, clients):
    """Per server and level: best and median p50 and p95 over the runs; voxd's medians as a
    fraction of each other server's."""
    medians = {}
    print(f"\n{'server':>15} {'clients':>7} {'p50 best':>8} {'p50 med':>8} {'p95 best':>8} "
          f"{'p95 med':>8}  runs")
    for kind in servers:
        for n in clients:
            levels = [lv for run in runs[kind] for lv in run if lv["clients"] == n]
            p50 = [lv["p50_ms"] for lv in levels if lv["p50_ms"] is not None]
            p95 = [lv["p95_ms"] for lv in levels if lv["p95_ms"] is not None]
            if not p50:
                continue
            medians[kind, n] = (statistics.median(p50), statistics.median(p95))
            print(f"{kind:>15} {n:>7} {fmt(min(p50)):>8} {fmt(medians[kind, n][0]):>8} "
                  f"{fmt(min(p95)):>8} {fmt(medians[kind, n][1]):>8}  {len(p50)}")
    for peer in [k for k in servers if k != "voxd"]:
        for n in clients:
            if ("voxd", n) in medians and (peer, n) in medians:
                (v50, v95), (f50, f95) = medians["voxd", n], medians[peer, n]
                print(f"voxd / {peer}, {n} client(s): p50 {v50 / f50:.2f}x, p95 {v95 / f95:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rounds", type=int, default=5, help="requests per client per level")
    parser.add_argument("--servers", nargs="+", default=["voxd"],
                        choices=["voxd", "faster-whisper"])
    parser.add_argument("--repeat", type=int, default=1, help="runs of every server")
    parser.add_argument("--model", default="models/tiny.en")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-clients", type=int, default=8)
    parser.add_argument("--queue", type=int, default=4)
    parser.add_argument("--voxd", default="target/release/voxd")
    parser.add_argument("--data", default="../shared/data/real/commands")
    parser.add_argument("--log", default="target/wyoming_load.log",
                        help="the servers' own log (default: target/wyoming_load.log)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    commands = load_commands(args.data)
    rng = random.Random(args.seed)
    runs = {kind: [] for kind in args.servers}
    os.makedirs(os.path.dirname(args.log) or ".", exist_ok=True)
    with open(args.log, "w") as log:
        for r in range(args.repeat):
            order = args.servers if r % 2 == 0 else list(reversed(args.servers))
            for kind in order:
                runs[kind].append(run_server(kind, args, commands, rng, log))
    if args.repeat > 1 or len(args.servers) > 1:
        summary(runs, args.servers, args.clients)
    levels = [lv for run in runs.get("voxd", []) for lv in run]
    within = [lv["clients"] for lv in levels
              if lv["p95_ms"] is not None and lv["p95_ms"] < GOAL_MS and not lv["failed"]]
    if levels:
        print(f"largest N with p95 audio-stop -> transcript under {GOAL_MS} ms: "
              f"{max(within) if within else 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "threads": args.threads,
                                               "runs": runs}, indent=2))
    return 1 if any(lv["failed"] for runs_ in runs.values() for run in runs_ for lv in run) else 0


if __name__ == "__main__":
    sys.exit(main())
