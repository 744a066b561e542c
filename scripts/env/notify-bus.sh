#!/usr/bin/env bash
# Runs a program on a private D-Bus session bus with a mock desktop notification server, for
# the notification tests (tests/live/actions.rs). Nothing of the user's own desktop is touched.
#
#   scripts/env/notify-bus.sh LOG PROGRAM [ARG...]
#
# The mock is python3-dbusmock's notification_daemon template; LOG gets one line per call it
# receives, e.g. `1700000000.000 Notify "voxd" 0 "" "Lights on in the kitchen" "" [] {...} -1`.
# PROGRAM starts once the server owns org.freedesktop.Notifications, with
# DBUS_SESSION_BUS_ADDRESS pointing at the private bus. The exit status is PROGRAM's, or 3
# when a tool is missing (run scripts/setup.sh), or 4 when the mock did not come up.
# NOTIFY_BUS_TIMEOUT (seconds, default 10) bounds the wait for the mock.
set -euo pipefail

# Debian's python3-dbusmock is installed for the system python, which a python3 earlier on
# PATH (pyenv, a venv) may not see.
PYTHON=/usr/bin/python3

die() { echo "notify-bus: $1" >&2; exit "${2:-3}"; }

if [ "${1:-}" != --on-bus ]; then
    [ $# -ge 2 ] || { sed -n '5p' "$0" >&2; exit 2; }
    for tool in dbus-run-session dbus-send; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "$tool not found: run scripts/setup.sh (it installs dbus)"
    done
    "$PYTHON" -c 'import dbusmock' 2>/dev/null ||
        die "python3-dbusmock not found for $PYTHON: run scripts/setup.sh"
    exec dbus-run-session -- "$0" --on-bus "$@"
fi
shift
LOG="$1"
shift

"$PYTHON" -m dbusmock --session --template notification_daemon -l "$LOG" >"$LOG.out" 2>&1 &
mock=$!
trap 'kill "$mock" 2>/dev/null || true' EXIT

has_server() {
    dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.Notifications 2>/dev/null |
        grep -q 'boolean true'
}
tries=$(( ${NOTIFY_BUS_TIMEOUT:-10} * 10 ))
until has_server; do
    kill -0 "$mock" 2>/dev/null || die "the mock notification server exited: $(cat "$LOG.out")" 4
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || die "the mock notification server did not start" 4
    sleep 0.1
done

"$@"
