#!/usr/bin/env python3
"""A Wyoming client made of the `wyoming` package's own classes, for the tests of
`voxd wyoming`: what a client no one here wrote sends and understands.

Usage (URI is tcp://HOST:PORT or unix://PATH):
  wyoming_client.py describe URI
  wyoming_client.py transcribe URI WAV [--name MODEL] [--chunk-ms 100]
  wyoming_client.py recognize URI TEXT
  wyoming_client.py handle URI TEXT

Prints one JSON object per event received: {"type": ..., "data": ...}. `describe` prints
the `info` as `wyoming.info.Info.from_event` parsed it (and fails if it cannot);
`transcribe` sends the WAV as 16-bit chunks and prints every event until the answer
(`transcript`, then `intent` / `not-recognized` for the commands model).
"""

import argparse
import asyncio
import dataclasses
import json
import sys
import wave

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.intent import Intent, NotRecognized, Recognize

READ_TIMEOUT_S = 120


def emit(event_type, data):
    print(json.dumps({"type": event_type, "data": data}), flush=True)


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
        frames = wav.readframes(wav.getnframes())
    await client.write_event(Transcribe(name=args.name).event())
    await client.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
    step = rate * args.chunk_ms // 1000 * 2 * channels
    for at in range(0, len(frames), step):
        chunk = AudioChunk(rate=rate, width=2, channels=channels, audio=frames[at:at + step])
        await client.write_event(chunk.event())
    await client.write_event(AudioStop().event())
    while True:
        event = await next_event(client)
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
