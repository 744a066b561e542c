#!/usr/bin/env python3
"""A Wyoming client made of the `wyoming` package's own classes, for the tests of
`voxd wyoming`: what a client no one here wrote sends and understands.

Usage (URI is tcp://HOST:PORT or unix://PATH):
  wyoming_client.py describe URI
  wyoming_client.py transcribe URI WAV [--name MODEL] [--chunk-ms 100] [--realtime]
                    [--seconds S]
  wyoming_client.py recognize URI TEXT
  wyoming_client.py handle URI TEXT

Prints one JSON object per event received: {"type": ..., "data": ...}. `describe` prints
the `info` as `wyoming.info.Info.from_event` parsed it (and fails if it cannot);
`transcribe` sends the WAV (its first S seconds) as 16-bit chunks, as fast as it can or
paced at real time, and prints every event until the answer (`transcript`, then `intent` /
`not-recognized` for the commands model), each with `"after_stop"`: whether it came after
the client sent `audio-stop`; streamed transcripts are parsed with the package's
`TranscriptStart`, `TranscriptChunk` and `TranscriptStop`.
"""

import argparse
import asyncio
import dataclasses
import json
import sys
import wave

import time

from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.intent import Intent, NotRecognized, Recognize

READ_TIMEOUT_S = 120


def emit(event_type, data, **extra):
    print(json.dumps({"type": event_type, "data": data, **extra}), flush=True)


async def next_event(client):
    event = await client.read_event()
    if event is None:
        raise SystemExit("the server closed the connection")
    emit(event.type, event.data)
    if Error.is_type(event.type):
        raise SystemExit(f"error event: {event.data}")
    return event


async def describe(client, _args):
    await client.write_event(Describe().event())
    while True:
        event = await client.read_event()
        if event is None:
            raise SystemExit("the server closed the connection")
        if Info.is_type(event.type):
            info = Info.from_event(event)
            emit("info", {
                "asr": [dataclasses.asdict(p) for p in info.asr],
                "intent": [dataclasses.asdict(p) for p in info.intent],
                "handle": [dataclasses.asdict(p) for p in info.handle],
            })
            return


async def transcribe(client, args):
    with wave.open(args.wav, "rb") as wav:
        if wav.getsampwidth() != 2:
            raise SystemExit(f"{args.wav}: expected 16-bit samples")
        rate, channels = wav.getframerate(), wav.getnchannels()
        count = wav.getnframes()
        if args.seconds is not None:
            count = min(count, int(args.seconds * rate))
        frames = wav.readframes(count)
    stopped = False
    answers = asyncio.Queue()

    async def read_all():
        # Read while sending: a server that streams its transcript writes before audio-stop.
        while True:
            event = await client.read_event()
            after_stop = stopped
            await answers.put((event, after_stop))
            if event is None or Transcript.is_type(event.type) and args.name != "voxd-commands":
                return
            if Intent.is_type(event.type) or NotRecognized.is_type(event.type):
                return
            if Error.is_type(event.type):
                return

    reader = asyncio.create_task(read_all())
    await client.write_event(Transcribe(name=args.name).event())
    await client.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
    step = rate * args.chunk_ms // 1000 * 2 * channels
    started = time.monotonic()
    for at in range(0, len(frames), step):
        chunk = AudioChunk(rate=rate, width=2, channels=channels, audio=frames[at:at + step])
        await client.write_event(chunk.event())
        if args.realtime:
            sent_s = (at + step) / (2 * channels * rate)
            await asyncio.sleep(max(0.0, started + sent_s - time.monotonic()))
        else:
            await asyncio.sleep(0)
    stopped = True
    await client.write_event(AudioStop().event())
    while True:
        event, after_stop = await answers.get()
        if event is None:
            raise SystemExit("the server closed the connection")
        emit(event.type, event.data, after_stop=after_stop)
        if Error.is_type(event.type):
            raise SystemExit(f"error event: {event.data}")
        if TranscriptStart.is_type(event.type):
            TranscriptStart.from_event(event)
        if TranscriptChunk.is_type(event.type):
            TranscriptChunk.from_event(event)
        if TranscriptStop.is_type(event.type):
            TranscriptStop.from_event(event)
        if Transcript.is_type(event.type):
            Transcript.from_event(event)
            if args.name != "voxd-commands":
                return
        if Intent.is_type(event.type):
            Intent.from_event(event)
            return
        if NotRecognized.is_type(event.type):
            NotRecognized.from_event(event)
            return


async def recognize(client, args):
    await client.write_event(Recognize(text=args.text).event())
    event = await next_event(client)
    if Intent.is_type(event.type):
        Intent.from_event(event)


async def handle(client, args):
    await client.write_event(Transcript(text=args.text).event())
    await next_event(client)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("describe").add_argument("uri")
    p = sub.add_parser("transcribe")
    p.add_argument("uri")
    p.add_argument("wav")
    p.add_argument("--name")
    p.add_argument("--chunk-ms", type=int, default=100)
    p.add_argument("--realtime", action="store_true", help="pace the chunks at real time")
    p.add_argument("--seconds", type=float, help="send only the first SECONDS of the file")
    for name in ("recognize", "handle"):
        p = sub.add_parser(name)
        p.add_argument("uri")
        p.add_argument("text")
    args = parser.parse_args()
    run = {"describe": describe, "transcribe": transcribe, "recognize": recognize,
           "handle": handle}[args.command]
    async with AsyncClient.from_uri(args.uri, read_timeout=READ_TIMEOUT_S) as client:
        await run(client, args)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
