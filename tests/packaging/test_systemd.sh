#!/bin/sh
# SPDX-License-Identifier: MIT
# package.systemd: the .deb under a real systemd. systemd_boot.sh boots this
# machine's systemd as PID 1 of namespaces of its own, on an overlay of the
# root (nothing reaches the machine); then, inside, as an operator would:
#  - `dpkg -i` the package made by package.deb: the user blazebot and its
#    folders exist (sysusers, tmpfiles), the unit is known and not enabled;
#  - a keystore from the packaged blazebot-sim, the packaged ini pointed at a
#    simulator started as a unit of its own with 20 pending messages;
#  - `systemctl start blazebot` returns once the daemon sent READY=1
#    (Type=notify): active/running, a STATUS= text, every message acked,
#    /healthz 200, the state and runtime folders made with their modes;
#  - `systemctl reload` (ExecReload: SIGHUP) and `blazebot --reload` both
#    reload (RELOADING=1 then READY=1; the status file counts 2);
#  - with WatchdogSec=2s (a drop-in), the daemon's WATCHDOG=1 keep-alives
#    arrive and it is not killed;
#  - `systemd-analyze security` rates the unit below 3 (printed);
#  - `systemctl stop`: a clean exit 0 (STOPPING=1 first);
#  - a broken ini: the daemon exits 1 before READY=1, so the start fails, the
#    journal names the file and line, and it is not restarted
#    (RestartPreventExitStatus=1).
# Needs root, unshare, nsenter, pivot_root and overlayfs: without them it
# fails under CI=true and is skipped (77) elsewhere.
# Usage: test_systemd.sh DEB SCRATCH_DIR (removed when the test passes)
set -eu
umask 022

if [ $# -ne 2 ]; then
  echo "usage: $0 DEB SCRATCH_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
deb=$1
scratch=$2
case "$scratch" in
/ | "") echo "refusing scratch dir '$scratch'" >&2; exit 2 ;;
esac

fail() { echo "package.systemd: FAILED: $*" >&2; exit 1; }
cannot() {
  if [ "${CI:-}" = true ]; then
    fail "$* (CI=true: not skipped)"
  fi
  echo "package.systemd: skipped: $*" >&2
  exit 77
}
step() { echo "== $*"; }

[ "$(id -u)" = 0 ] || cannot "needs root (it boots systemd in namespaces)"
for tool in unshare nsenter pivot_root timeout setsid; do
  command -v "$tool" >/dev/null 2>&1 || cannot "$tool not found"
done
[ -x /lib/systemd/systemd ] || cannot "no /lib/systemd/systemd (package systemd)"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
  cannot "no overlayfs in this kernel"
[ -f "$deb" ] || fail "no package at $deb (the test package.deb makes it)"

rm -rf "$scratch"
mkdir -p "$scratch/ns"
scratch=$(cd "$scratch" && pwd)
cp "$deb" "$scratch/blazebot.deb"

# A cgroup of its own in each hierarchy systemd uses (the cgroup namespace
# makes it the root systemd sees), removed at the end.
cgroups=""
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
  set -- /sys/fs/cgroup
else
  set -- /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
fi
for h in "$@"; do
  [ -d "$h" ] || continue
  mkdir "$h/blazebot-test-$$" || cannot "cannot make a cgroup in $h"
  cgroups="$cgroups $h/blazebot-test-$$"
done

upid=""
spid=""
cleanup() {
  [ -z "$spid" ] || kill -9 "$spid" 2>/dev/null || true
  [ -z "$upid" ] || kill -9 "$upid" 2>/dev/null || true
  [ -z "$upid" ] || wait "$upid" 2>/dev/null || true
  for c in $cgroups; do
    for i in 1 2 3 4 5 6 7 8 9 10; do
      find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [ -d "$c" ] || break
      sleep 0.5
    done
    [ ! -d "$c" ] || echo "package.systemd: could not remove $c" >&2
  done
}
trap cleanup EXIT

step "boot systemd $(/lib/systemd/systemd --version | head -1 | cut -d' ' -f2) in namespaces on an overlay of /"
setsid sh -c 'for c in $1; do echo $$ >"$c/cgroup.procs"; done
  exec unshare --fork --pid --mount --net --uts --ipc --cgroup --propagation private \
    sh "$2" "$3"' sh "$cgroups" "$here/systemd_boot.sh" "$scratch/ns" \
  >"$scratch/boot.log" 2>&1 </dev/null &
upid=$!
for i in $(seq 1 100); do
  spid=$(pgrep -P "$upid" 2>/dev/null | head -1 || true)
  [ -n "$spid" ] && [ "$(cat "/proc/$spid/comm" 2>/dev/null)" = systemd ] && break
  spid=""
  kill -0 "$upid" 2>/dev/null || break
  sleep 0.2
done
[ -n "$spid" ] || { cat "$scratch/boot.log" >&2; fail "systemd did not start"; }

# Runs a command inside, bounded.
in_ns() { timeout 120 nsenter -t "$spid" -a "$@"; }
state=""
for i in $(seq 1 120); do
  state=$(in_ns systemctl is-system-running 2>/dev/null || true)
  case "$state" in running | degraded) break ;; esac
  sleep 0.5
done
case "$state" in
running | degraded) echo "system: $state" ;;
*) cat "$scratch/boot.log" >&2; fail "systemd did not finish booting (state '$state')" ;;
esac

show() { in_ns systemctl show "$1" -p "$2" --value; }
expect_prop() {
  got=$(show "$1" "$2")
  [ "$got" = "$3" ] || { in_ns journalctl -u "$1" --no-pager | tail -30 >&2; fail "$1 $2 is '$got', not '$3'"; }
}
journal() { in_ns journalctl -u blazebot.service --no-pager -o cat; }
# GET http://127.0.0.1:PORT/PATH inside, with bash's /dev/tcp; prints the response.
http_get() {
  in_ns bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" >&3
    timeout 10 cat <&3' sh "$1" "$2"
}

step "dpkg -i blazebot.deb"
in_ns dpkg -i "$scratch/blazebot.deb" >"$scratch/dpkg.log" 2>&1 ||
  { cat "$scratch/dpkg.log" >&2; fail "dpkg -i failed"; }
in_ns id blazebot >/dev/null || fail "no user blazebot after the install"
[ "$(in_ns stat -c '%a %U %G' /var/lib/blazebot)" = "700 blazebot blazebot" ] ||
  fail "/var/lib/blazebot is $(in_ns stat -c '%a %U %G' /var/lib/blazebot)"
[ "$(in_ns stat -c '%a %U %G' /etc/blazebot)" = "750 root blazebot" ] ||
  fail "/etc/blazebot is $(in_ns stat -c '%a %U %G' /etc/blazebot)"
[ "$(in_ns systemctl is-enabled blazebot.service || true)" = disabled ] ||
  fail "the install enabled the service"
[ "$(in_ns systemctl is-active blazebot.service || true)" = inactive ] ||
  fail "the install started the service"

step "keystore, ini and a simulator with 20 pending messages"
in_ns sh -ec '
  blazebot-sim keygen --type ed25519 -o /etc/blazebot/keystore.json >/dev/null
  chown blazebot:blazebot /etc/blazebot/keystore.json
  chmod 600 /etc/blazebot/keystore.json
  ini=/etc/blazebot/blazebot.ini
  sed -i -e "s|^blaze_url = .*|blaze_url = ws://127.0.0.1:7600/|" \
    -e "s|^api_url = .*|api_url = http://127.0.0.1:7600|" \
    -e "s|^; *status_file = \([^ ]*\).*|status_file = \1|" \
    -e "s|^; *metrics_listen = \([^ ]*\).*|metrics_listen = \1|" $ini
  grep -q "^status_file = /run/blazebot/status.json" $ini
  grep -q "^metrics_listen = 127.0.0.1:9464" $ini
  systemd-run --quiet --unit=blazebot-sim /usr/bin/blazebot-sim \
    --keystore /etc/blazebot/keystore.json --listen 127.0.0.1:7600 --preload 20' ||
  fail "could not set up the keystore, the ini or the simulator"
for i in $(seq 1 50); do
  http_get 7600 /_sim/stats 2>/dev/null | grep -q '"messages"' && break
  sleep 0.2
done

step "systemctl start blazebot"
t0=$(date +%s)
in_ns systemctl start blazebot.service ||
  { journal | tail -30 >&2; fail "systemctl start failed"; }
echo "started in $(($(date +%s) - t0)) s; status: $(show blazebot.service StatusText)"
expect_prop blazebot.service ActiveState active
expect_prop blazebot.service SubState running
expect_prop blazebot.service Type notify
expect_prop blazebot.service WatchdogUSec 30s
journal | grep -q "getifaddrs" && fail "the daemon could not list interfaces (RestrictAddressFamilies)"
[ -n "$(show blazebot.service StatusText)" ] || fail "no STATUS= text"
acked=""
for i in $(seq 1 150); do
  acked=$(http_get 7600 /_sim/stats 2>/dev/null | tr ',' '\n' | sed -n 's/^ *"acked": *\([0-9]*\).*/\1/p' | head -1)
  [ "$acked" = 20 ] && break
  sleep 0.2
done
[ "$acked" = 20 ] || { journal | tail -30 >&2; fail "$acked of 20 messages acked"; }
echo "20 of 20 messages acked"
http_get 9464 /healthz | head -1 | grep -q " 200 " || fail "/healthz is not 200"
[ "$(in_ns stat -c '%U' /run/blazebot/status.json)" = blazebot ] ||
  fail "no status file of the user blazebot in /run/blazebot"

step "systemctl reload, then blazebot --reload"
in_ns systemctl reload blazebot.service || fail "systemctl reload failed"
reloads=""
for i in $(seq 1 100); do
  reloads=$(in_ns cat /run/blazebot/status.json | tr ',' '\n' | sed -n 's/^ *{*"reloads": *\([0-9]*\).*/\1/p')
  [ "$reloads" = 1 ] && break
  sleep 0.1
done
[ "$reloads" = 1 ] || fail "the status file counts '$reloads' reloads after systemctl reload"
in_ns blazebot -c /etc/blazebot/blazebot.ini --reload >"$scratch/reload.out" 2>&1 ||
  { cat "$scratch/reload.out" >&2; fail "blazebot --reload failed"; }
journal | grep -c "reload: done" | grep -qx 2 || fail "the journal does not show 2 reloads done"
expect_prop blazebot.service ActiveState active
expect_prop blazebot.service NRestarts 0

step "WatchdogSec=2s: keep-alives arrive, nothing is killed"
in_ns sh -ec 'mkdir -p /etc/systemd/system/blazebot.service.d
  printf "[Service]\nWatchdogSec=2s\n" >/etc/systemd/system/blazebot.service.d/watchdog.conf
  systemctl daemon-reload
  systemctl restart blazebot.service' || fail "restart with WatchdogSec=2s failed"
w0=$(show blazebot.service WatchdogTimestampMonotonic)
sleep 5
w1=$(show blazebot.service WatchdogTimestampMonotonic)
[ "$w1" -gt "${w0:-0}" ] 2>/dev/null || fail "no WATCHDOG=1 in 5 s (timestamps $w0, $w1)"
expect_prop blazebot.service ActiveState active
expect_prop blazebot.service NRestarts 0
in_ns sh -ec 'rm -r /etc/systemd/system/blazebot.service.d; systemctl daemon-reload'

step "systemd-analyze security blazebot.service"
in_ns systemd-analyze security blazebot.service --no-pager >"$scratch/security.txt" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for blazebot.service: \([0-9.]*\).*/\1/p' "$scratch/security.txt")
[ -n "$exposure" ] || { cat "$scratch/security.txt" >&2; fail "no exposure level"; }
echo "exposure level: $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e < 3) }' || fail "exposure $exposure is not under 3"

step "systemctl stop blazebot"
in_ns systemctl stop blazebot.service || fail "systemctl stop failed"
expect_prop blazebot.service ActiveState inactive
expect_prop blazebot.service Result success
expect_prop blazebot.service ExecMainStatus 0
journal | grep -q "stopped" || fail "the daemon's stop is not in the journal"

step "a broken ini: the start fails, is reported with file:line and is not restarted"
in_ns sh -ec 'echo "this line is not a key" >>/etc/blazebot/blazebot.ini'
if in_ns systemctl start blazebot.service 2>/dev/null; then
  fail "the service started with a broken ini"
fi
line=$(in_ns grep -n "this line is not a key" /etc/blazebot/blazebot.ini | cut -d: -f1)
journal | grep -q "blazebot.ini:$line" || { journal | tail -20 >&2; fail "the journal does not name blazebot.ini:$line"; }
sleep 7 # RestartSec=5s
expect_prop blazebot.service ActiveState failed
expect_prop blazebot.service NRestarts 0

echo "package.systemd: passed"
trap - EXIT
cleanup
rm -rf "$scratch"
