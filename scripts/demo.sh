#!/bin/bash
# SPDX-License-Identifier: MIT
# The demo: builds blazebot, makes a throw-away bot identity, starts the
# bundled Blaze simulator on 127.0.0.1 playing users who chat with the bot
# (examples/demo/conversation.txt), and runs the daemon with the echo,
# commands and welcome plugins against it. The simulator drops the connection once in
# the middle; nothing is lost or answered twice. No Mixin account or network
# needed. Prints the conversation, then the daemon's log.
set -e
cd "$(dirname "$0")/.."
root=$(pwd)
. scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
echo "== building (build/demo)"
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/demo -j "$jobs" >/dev/null
BIN=build/demo/blazebot
SIM=build/demo/tests/sim/blazebot-sim

work=$(mktemp -d /tmp/blazebot-demo.XXXXXX)
chmod 700 "$work"
dpid=""
spid=""
cleanup() {
  [ -n "$dpid" ] && kill "$dpid" 2>/dev/null || true
  [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# The bot's plugins live in a folder only its owner can write (the daemon
# refuses anything else).
mkdir -m 755 "$work/plugins"
install -m 644 build/demo/plugins/echo.so build/demo/plugins/commands.so \
  build/demo/plugins/welcome.so "$work/plugins/"
"$SIM" keygen --type ed25519 -o "$work/keystore.json" >/dev/null

"$SIM" --keystore "$work/keystore.json" --listen 127.0.0.1:0 --port-file "$work/port" \
  --chat "$root/examples/demo/conversation.txt" --fault drop@3 \
  --stats-file "$work/sim-stats.json" --timeout 120 \
  >"$work/transcript.txt" 2>"$work/sim.log" &
spid=$!
i=0
while [ ! -s "$work/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$work/port")

cat >"$work/blazebot.ini" <<INI
; blazebot configuration for the demo (see docs/operating.md for every key)
[blazebot]
keystore = keystore.json
blaze_url = ws://127.0.0.1:$port/
api_url = http://127.0.0.1:$port
plugin_dir = plugins
ack_interval_ms = 100
reconnect_min_ms = 300

[plugin.commands]
commands = help, ping, about, whoami
command.ping = pong
describe.ping = checks that the bot is alive
command.about = I am a blazebot demo: commands answers /commands, echo repeats the rest.
describe.about = what this bot is
command.whoami = You are {full_name} ({identity_number})
describe.whoami = your Mixin profile, looked up with GET /users/{user_id}

[plugin.welcome]
text = Welcome to the group, {full_name}!

[plugin.echo]
prefix = "you said: "
INI
chmod 600 "$work/blazebot.ini"

echo "== blazebot demo: the simulator on 127.0.0.1:$port plays alice and bob"
"$BIN" -c "$work/blazebot.ini" --check
"$BIN" -c "$work/blazebot.ini" --stats-file "$work/stats.json" 2>"$work/blazebot.log" &
dpid=$!

# The simulator exits by itself after the last line was answered and acked.
simrc=0
wait "$spid" || simrc=$?
spid=""
kill -TERM "$dpid"
wait "$dpid" || true
dpid=""
echo
echo "== the conversation (the simulator's transcript)"
cat "$work/transcript.txt"
echo
echo "== the daemon's log"
cat "$work/blazebot.log"
echo
if [ "$simrc" != 0 ]; then
  echo "demo FAILED: a message was not answered and acknowledged (simulator exit $simrc)" >&2
  exit 1
fi
echo "== demo OK: every message answered once and acknowledged, across a dropped connection"
echo "   Files are in $work. To chat with the bot yourself, run in two terminals:"
echo "     $SIM --keystore $work/keystore.json --listen 127.0.0.1:$port --interactive"
echo "     $BIN -c $work/blazebot.ini"
