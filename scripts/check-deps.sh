#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks that core/ modules depend one way: no #include cycle among them,
# and nothing but main.c (and daemon.c itself) includes daemon.h, so no
# module calls up into the daemon. Usage: scripts/check-deps.sh [ROOT]
set -e
root=${1:-$(dirname "$0")/..}
cd "$root/core"
for f in *.c *.h; do
  m=${f%.*}
  sed -n 's/^#include "\([a-z_0-9]*\)\.h".*/\1/p' "$f" | while read -r dep; do
    if [ "$dep" != "$m" ]; then echo "$m $dep"; fi
  done
done | sort -u | awk '
  { adj[$1] = adj[$1] " " $2; nodes[$1] = 1; nodes[$2] = 1
    if ($2 == "daemon" && $1 != "main" && $1 != "daemon") {
      printf "check-deps: core/%s includes daemon.h (only main.c may)\n", $1; bad = 1 } }
  function visit(n, path,   k, i, parts, c) {
    state[n] = 1
    c = split(adj[n], parts, " ")
    for (i = 1; i <= c; i++) {
      k = parts[i]
      if (state[k] == 1) { printf "check-deps: include cycle: %s -> %s\n", path, k; bad = 1 }
      else if (state[k] == 0) visit(k, path " -> " k)
    }
    state[n] = 2
  }
  END {
    for (n in nodes) if (state[n] == 0) visit(n, n)
    if (bad) { print "check-deps: FAILED"; exit 1 }
    n = 0; for (k in nodes) n++
    printf "check-deps: OK (%d modules, no cycle)\n", n
  }'
