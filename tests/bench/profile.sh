#!/bin/sh
# SPDX-License-Identifier: MIT
# Where the daemon's CPU goes, in instructions (valgrind's callgrind counts
# them exactly, whatever else the machine does, so two builds compare fairly
# on a shared box): N pending messages echoed by the echo plugin against the
# simulator, the daemon under callgrind.
# Usage: tests/bench/profile.sh BUILD_DIR [N] [OUT_DIR]
#   prints instructions per message and the top functions; OUT_DIR keeps
#   callgrind.out for callgrind_annotate / kcachegrind.
set -e
build=$(cd "${1:?usage: profile.sh BUILD_DIR [N] [OUT_DIR]}" && pwd)
n=${2:-5000}
out=${3:-$(mktemp -d)}
mkdir -p "$out"
cd "$out"
rm -rf plugins sim.port && mkdir -m 755 plugins
cp "$build/plugins/echo/echo.so" plugins/ 2>/dev/null || cp "$(find "$build/plugins" -name echo.so | head -1)" plugins/
chmod 644 plugins/echo.so
sim="${SIM:-$build/tests/sim/blazebot-sim}"
"$sim" keygen -o keystore.json >/dev/null 2>&1 || true
"$sim" --keystore keystore.json --listen 127.0.0.1:0 --port-file sim.port --preload "$n" --users 1000 \
  >sim.out 2>sim.err &
simpid=$!
trap 'kill $simpid 2>/dev/null || true' EXIT
for _ in $(seq 600); do [ -s sim.port ] && break; sleep 0.1; done
port=$(cat sim.port)
cat >blazebot.ini <<INI
[blazebot]
keystore = keystore.json
blaze_url = ws://127.0.0.1:$port/
api_url = http://127.0.0.1:$port
plugin_dir = plugins
send_rate_per_min = 0
log_level = warn
request_timeout_ms = 600000
[plugin.echo]
INI
valgrind --tool=callgrind --callgrind-out-file=callgrind.out "$build/blazebot" -c blazebot.ini \
  >daemon.out 2>daemon.err &
dpid=$!
stat() { curl -s "127.0.0.1:$port/_sim/stats" | sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p"; }
for _ in $(seq 1200); do
  [ "$(stat acked)" = "$n" ] && [ "$(stat created)" = "$n" ] && break
  sleep 0.5
done
echo "acked $(stat acked), replies $(stat created) of $n"
kill -TERM $dpid
wait $dpid || true
total=$(callgrind_annotate callgrind.out 2>/dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "instructions per message: $((total / n)) (total $total, start-up and shutdown included)"
callgrind_annotate --inclusive=no callgrind.out 2>/dev/null | sed -n '/^-*$/,$p' | grep -v '^-' | head -30
echo "callgrind output: $out/callgrind.out"
