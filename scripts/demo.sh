#!/bin/bash
# SPDX-License-Identifier: MIT
# The demo: builds blazebot, makes a throw-away bot identity, starts the
# bundled Blaze simulator on 127.0.0.1 with messages waiting for the bot,
# runs the daemon against it through a dropped connection, and prints what
# happened. No Mixin account or network needed.
set -e
cd "$(dirname "$0")/.."
. scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/demo -j "$jobs" >/dev/null
BIN=build/demo/blazebot
SIM=build/demo/tests/sim/blazebot-sim

work=$(mktemp -d /tmp/blazebot-demo.XXXXXX)
cleanup() {
  [ -n "$dpid" ] && kill "$dpid" 2>/dev/null || true
  [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$SIM" keygen --type ed25519 -o "$work/keystore.json" >/dev/null
"$SIM" --keystore "$work/keystore.json" --listen 127.0.0.1:0 --port-file "$work/port" \
  --preload 500 --fault drop@200 --stats-file "$work/sim-stats.json" --timeout 120 --exit-when-acked \
  >"$work/sim.out" 2>"$work/sim.log" &
spid=$!
i=0
while [ ! -s "$work/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$work/port")

cat >"$work/blazebot.ini" <<INI
; blazebot configuration for the demo (see README.md for every key)
[blazebot]
keystore = keystore.json
blaze_url = ws://127.0.0.1:$port/
api_url = http://127.0.0.1:$port
ack_interval_ms = 100
reconnect_min_ms = 500
INI
chmod 600 "$work/blazebot.ini"

echo "== blazebot demo: simulator on 127.0.0.1:$port with 500 messages waiting;"
echo "   it will drop the connection after 200 of them"
"$BIN" -c "$work/blazebot.ini" --check
"$BIN" -c "$work/blazebot.ini" --stats-file "$work/stats.json" 2>"$work/blazebot.log" &
dpid=$!

# The simulator exits by itself once every message is acknowledged.
simrc=0
wait "$spid" || simrc=$?
spid=""
kill -TERM "$dpid"
wait "$dpid" || true
dpid=""
echo "== daemon log"
cat "$work/blazebot.log"
echo "== the simulator's account (connections, acknowledged, ...)"
cat "$work/sim-stats.json"
if [ "$simrc" != 0 ]; then
  echo "demo FAILED: not every message was acknowledged (simulator exit $simrc)" >&2
  exit 1
fi
echo "== demo OK: every message processed and acknowledged once, across a dropped link"
echo "== files in $work"
