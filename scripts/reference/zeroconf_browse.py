#!/usr/bin/env python3
"""Browses `_wyoming._tcp.local.` with the `zeroconf` package, which Home Assistant's own
discovery is made of, for the tests of `voxd wyoming --zeroconf`.

Usage:
  zeroconf_browse.py NAME [--timeout S]

Waits for the instance NAME, resolves it and prints {"event": "found", "name", "port",
"server", "addresses"} as one JSON line; then waits for the instance to go (the goodbye a
server sends when it stops) and prints {"event": "removed", "name"}. Exits 1 with what it
did see when either takes longer than S seconds (default 30).
"""

import argparse
import json
import sys
import threading

from zeroconf import ServiceBrowser, ServiceListener, Zeroconf

SERVICE_TYPE = "_wyoming._tcp.local."


def emit(**fields):
    print(json.dumps(fields), flush=True)


class Watch(ServiceListener):
    def __init__(self, fullname):
        self.fullname = fullname.lower()
        self.seen = []
        self.added = threading.Event()
        self.removed = threading.Event()

    def add_service(self, zc, type_, name):
        self.seen.append(name)
        if name.lower() == self.fullname:
            self.added.set()

    def update_service(self, zc, type_, name):
        pass

    def remove_service(self, zc, type_, name):
        if name.lower() == self.fullname:
            self.removed.set()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    fullname = f"{args.name}.{SERVICE_TYPE}"
    zc = Zeroconf()
    try:
        watch = Watch(fullname)
        ServiceBrowser(zc, SERVICE_TYPE, watch)
        if not watch.added.wait(args.timeout):
            sys.exit(f"{fullname} not found in {args.timeout} s; seen: {watch.seen}")
        info = zc.get_service_info(SERVICE_TYPE, fullname, timeout=int(args.timeout * 1000))
        if info is None:
            sys.exit(f"{fullname} was found but could not be resolved")
        emit(event="found", name=info.name, port=info.port, server=info.server,
             addresses=info.parsed_addresses())
        if not watch.removed.wait(args.timeout):
            sys.exit(f"{fullname} was not withdrawn in {args.timeout} s")
        emit(event="removed", name=fullname)
    finally:
        zc.close()


if __name__ == "__main__":
    main()
