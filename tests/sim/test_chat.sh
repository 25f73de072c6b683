#!/bin/sh
# SPDX-License-Identifier: MIT
# sim.chat: the README demo, for real. blazebot-sim plays a --chat script to
# the real daemon running the real echo, commands and welcome plugins, and
# the transcript on stdout must show every user line followed by the bot's
# answers (commands answers /help, /ping and /whoami with the user's profile
# from GET /users/:id, welcome greets carol when she joins the group, echo
# repeats the rest), end with
# the summary line and hold nothing else (the stats JSON goes to stderr).
# Then the same daemon set-up gets lines piped into --interactive.
#
# usage: test_chat.sh BLAZEBOT BLAZEBOT_SIM ECHO_SO COMMANDS_SO WELCOME_SO
set -u

if [ $# -ne 5 ]; then
  echo "usage: $0 BLAZEBOT BLAZEBOT_SIM ECHO_SO COMMANDS_SO WELCOME_SO" >&2
  exit 2
fi
# Absolute paths: the test runs in its own scratch folder.
abs() {
  case $1 in
  /*) echo "$1" ;;
  *) echo "$PWD/$1" ;;
  esac
}
BOT=$(abs "$1")
SIM=$(abs "$2")
ECHO_SO=$(abs "$3")
COMMANDS_SO=$(abs "$4")
WELCOME_SO=$(abs "$5")

base=${BLAZEBOT_TEST_TMP:-${TMPDIR:-/tmp}}
mkdir -p "$base" || exit 1
dir=$(mktemp -d "$base/chat.XXXXXX") || exit 1
bot_pid=
sim_pid=

cleanup() {
  [ -n "$bot_pid" ] && kill "$bot_pid" 2>/dev/null
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
  wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*" >&2
  for f in "$dir"/transcript*.txt "$dir"/sim*.log "$dir"/bot*.log; do
    [ -f "$f" ] || continue
    echo "---- $f" >&2
    tail -n 40 "$f" >&2
  done
  exit 1
}

cd "$dir" || exit 1
"$SIM" keygen -o ks.json >keygen.log 2>&1 || fail "keygen"
mkdir plugins && cp "$ECHO_SO" plugins/echo.so && cp "$COMMANDS_SO" plugins/commands.so &&
  cp "$WELCOME_SO" plugins/welcome.so ||
  fail "copying the plugins"
chmod 0755 plugins && chmod 0644 plugins/*.so && chmod 0600 ks.json

cat >script.txt <<'EOF'
# the README demo
hello
/help

/ping
how are you?
as bob: hi, I'm bob
/whoami
join: carol
EOF

# Waits for the simulator's port file, then starts the daemon against it.
start_bot() {
  i=0
  while [ ! -s "port$1" ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && fail "the simulator wrote no port file"
    sleep 0.1
  done
  port=$(cat "port$1")
  cat >"bot$1.ini" <<EOF
[blazebot]
keystore = ks.json
blaze_url = ws://127.0.0.1:$port/
api_url = http://127.0.0.1:$port
plugin_dir = plugins
[plugin.echo]
[plugin.commands]
commands = help, ping, whoami
command.ping = pong
describe.ping = checks that the bot is alive
command.whoami = You are {full_name} ({identity_number})
[plugin.welcome]
text = Welcome, {full_name}!
EOF
  chmod 0600 "bot$1.ini"
  timeout --foreground 60 "$BOT" -c "bot$1.ini" >"bot$1.out" 2>"bot$1.log" &
  bot_pid=$!
}

stop_bot() {
  kill "$bot_pid" 2>/dev/null
  wait "$bot_pid" 2>/dev/null
  bot_pid=
}

# 1. --chat
timeout 60 "$SIM" --keystore ks.json --listen 127.0.0.1:0 --port-file port1 \
  --chat script.txt --stats-file stats1.json --timeout 50 >transcript1.txt 2>sim1.log &
sim_pid=$!
start_bot 1
wait "$sim_pid"
rc=$?
sim_pid=
stop_bot
[ $rc -eq 0 ] || fail "--chat exited with $rc"

# Every expected line, in this order (other lines may come between).
cat >expected1.txt <<'EOF'
alice  > hello
  bot  > hello
alice  > /help
  bot  > Commands:
alice  > /ping
  bot  > pong
alice  > how are you?
  bot  > how are you?
bob    > hi, I'm bob
  bot  > hi, I'm bob
alice  > /whoami
carol  > (joins the group)
  bot  > (in the group) Welcome, carol!
-- 7 messages sent, 7 replies, all acknowledged
EOF
awk 'BEGIN { n = 0; i = 0 }
     NR == FNR { want[n++] = $0; next }
     i < n && $0 == want[i] { i++ }
     END { if (i < n) { print "missing or out of order: " want[i]; exit 1 } }' \
  expected1.txt transcript1.txt >&2 || fail "the --chat transcript"
grep -q '^ *\/ping — checks that the bot is alive$' transcript1.txt ||
  fail "/help does not list /ping"
grep -qE '^  bot  > You are alice \([0-9]{8}\)$' transcript1.txt ||
  fail "/whoami is not answered with alice's profile"
[ "$(grep -c '^  bot  > ' transcript1.txt)" -eq 7 ] ||
  fail "not exactly one answer per line (echo must not repeat commands)"
grep -q 'no reply\|not acknowledged\|^{' transcript1.txt &&
  fail "unexpected lines in the transcript"
[ "$(tail -n 1 transcript1.txt)" = "-- 7 messages sent, 7 replies, all acknowledged" ] ||
  fail "the summary is not the last line"
grep -q '"acked":7,' stats1.json || fail "--stats-file does not count 7 acked"

# 2. --interactive, lines from a pipe; it exits once they are answered.
(
  i=0
  while [ ! -s port2 ] && [ $i -lt 100 ]; do
    i=$((i + 1))
    sleep 0.1
  done
  sleep 1
  echo hello
  echo "as bob: /ping"
) | timeout 60 "$SIM" --keystore ks.json --listen 127.0.0.1:0 --port-file port2 \
  --interactive --chat-timeout 20000 --timeout 50 >transcript2.txt 2>sim2.log &
sim_pid=$!
start_bot 2
wait "$sim_pid"
rc=$?
sim_pid=
stop_bot
[ $rc -eq 0 ] || fail "--interactive exited with $rc"
for line in 'alice  > hello' 'bob    > /ping' '  bot  > pong' \
  '-- 2 messages sent, 2 replies, all acknowledged'; do
  grep -qFx -e "$line" transcript2.txt || fail "the --interactive transcript lacks: $line"
done
grep -qE '^  bot  > (\(to alice\) )?hello$' transcript2.txt ||
  fail "the --interactive transcript lacks the echo of hello"
# A ThreadSanitizer build (scripts/test.sh --tsan): a report in either
# daemon fails the test, whatever the transcripts say.
for f in bot1.log bot2.log; do
  if grep -q 'ThreadSanitizer' "$f"; then
    sed -n '/ThreadSanitizer/,$p' "$f" | head -n 80 >&2
    fail "ThreadSanitizer report in $f"
  fi
done

rm -rf "$dir"
echo "sim.chat: ok"
exit 0
