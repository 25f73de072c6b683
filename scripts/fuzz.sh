#!/bin/sh
# SPDX-License-Identifier: MIT
# Coverage-guided fuzzing of the tests/fuzz/ targets with libFuzzer.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60 seconds per target)
# Configures build/fuzz with clang and -DBLAZEBOT_FUZZ=ON, builds the fuzz
# targets, then runs them one after the other (never two at once), each for
# SECONDS (-max_total_time) on a copy of its corpus tests/fuzz/corpus/NAME in
# build/fuzz/fuzz-runs/NAME/corpus, so the tree's corpus changes only when
# someone copies inputs into it. Crashes, leaks, timeouts and out-of-memory
# inputs land in build/fuzz/fuzz-runs/NAME/ (crash-*, leak-*, timeout-*,
# oom-*), with libFuzzer's log in fuzz.log there. A table gives, per target,
# the inputs executed, the corpus size before and after, and the artifacts.
# Exits 1 when any target left an artifact or failed, 2 on a usage or build
# error. Environment: BLAZEBOT_FUZZ_BUILD (the build folder),
# BLAZEBOT_FUZZ_TARGETS (a space-separated subset), FUZZ_CC (default clang).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
case $secs in
'' | *[!0-9]*)
  echo "usage: scripts/fuzz.sh [SECONDS]" >&2
  exit 2
  ;;
esac
build=${BLAZEBOT_FUZZ_BUILD:-$root/build/fuzz}
targets=${BLAZEBOT_FUZZ_TARGETS:-"frame answer ini keystore base64_jwt sim_request"}
cc=${FUZZ_CC:-clang}

# The largest input worth trying, per target.
max_len() {
  case $1 in
  frame) echo 8192 ;;
  sim_request) echo 8448 ;; # past SIM_MAX_REQLINE (8192): a line too long
  base64_jwt) echo 2048 ;;
  *) echo 4096 ;;
  esac
}

exes=""
for t in $targets; do
  if [ ! -d "$root/tests/fuzz/corpus/$t" ]; then
    echo "fuzz: no corpus folder tests/fuzz/corpus/$t" >&2
    exit 2
  fi
  exes="$exes fuzz_$t"
done

echo "fuzz: configuring $build with $cc and BLAZEBOT_FUZZ=ON"
mkdir -p "$build"
if ! cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DBLAZEBOT_FUZZ=ON \
  -DBLAZEBOT_SANITIZE=OFF >"$build/fuzz-configure.log" 2>&1; then
  cat "$build/fuzz-configure.log" >&2
  exit 2
fi
echo "fuzz: building$exes (log: $build/fuzz-build.log)"
# shellcheck disable=SC2086 # one word per target
if ! cmake --build "$build" -j1 --target $exes >"$build/fuzz-build.log" 2>&1; then
  tail -n 40 "$build/fuzz-build.log" >&2
  echo "fuzz: the build failed" >&2
  exit 2
fi

runs=$build/fuzz-runs
mkdir -p "$runs"
table=$runs/summary.txt
printf '%-12s %12s %9s %16s  %s\n' target executions exec/s "corpus (seeds)" \
  artifacts >"$table"
status=0
for t in $targets; do
  dir=$runs/$t
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  cp "$root/tests/fuzz/corpus/$t/"* "$dir/corpus/" 2>/dev/null || true
  seeds=$(find "$dir/corpus" -type f | wc -l)
  exe=$(find "$build" -name "fuzz_$t" -type f -perm -u+x | head -n 1)
  echo "fuzz: $t for ${secs}s (log: $dir/fuzz.log)"
  rc=0
  # -close_fd_mask=2: the daemon's log lines go nowhere; libFuzzer and the
  # sanitizers keep writing their reports to the log.
  "$exe" -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 \
    -rss_limit_mb=2048 -close_fd_mask=2 -print_final_stats=1 \
    -artifact_prefix="$dir/" "$dir/corpus" >"$dir/fuzz.log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/fuzz.log" | tail -n 1)
  now=$(find "$dir/corpus" -type f | wc -l)
  arts=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
    -o -name 'timeout-*' -o -name 'oom-*' \) -exec basename {} \; | sort | tr '\n' ' ')
  if [ -n "$arts" ] || [ "$rc" -ne 0 ]; then
    status=1
    [ -n "$arts" ] || arts="(exit $rc, see the log)"
  fi
  printf '%-12s %12s %9s %16s  %s\n' "$t" "${execs:-?}" "${speed:-?}" \
    "$now ($seeds)" "${arts:--}" >>"$table"
done
echo
cat "$table"
if [ "$status" -ne 0 ]; then
  echo
  echo "fuzz: found something: the artifacts are in $runs/<target>/; reproduce one with"
  echo "  $build/tests/fuzz_<target> $runs/<target>/crash-..."
fi
exit "$status"
