#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs every test: builds with -Werror and runs the suite, then builds again
# with AddressSanitizer + UBSan (leak checking on) and runs it again, then
# builds with ThreadSanitizer and runs the tests that run threads.
# Usage: scripts/test.sh [--fast | --tsan]
#   --fast   the suite only (no sanitizer pass)
#   --tsan   the ThreadSanitizer pass only
# BLAZEBOT_JOBS (default: the number of CPUs) sets the build's parallelism,
# BLAZEBOT_TEST_JOBS (default 2) ctest's.
set -e
cd "$(dirname "$0")/.."
. scripts/deps.sh
jobs=${BLAZEBOT_JOBS:-$(nproc 2>/dev/null || echo 2)}
test_jobs=${BLAZEBOT_TEST_JOBS:-2}
mode=${1:-all}
case "$mode" in
all | --fast | --tsan) ;;
*)
  echo "usage: scripts/test.sh [--fast | --tsan]" >&2
  exit 2
  ;;
esac

# The ThreadSanitizer pass: every test that runs the daemon (whose dispatch
# workers, blocking pool and plugin threads run next to the I/O thread), the
# plugins on the SDK's fake host, the ABI fixtures, and the threaded unit
# tests. halt_on_error makes the first report end the process with TSan's
# exit code (66); the integration harness fails a test whose child process
# reported (tests/integration/harness.c), and ctest fails the others by
# their exit status. tests/tsan.supp may only name libwebsockets or OpenSSL
# internals (see docs/testing.md).
TSAN_TESTS='^(unit\.(outbox|pending)|integration\..*|plugins\..*|abi\..*|nats\..*|sim\.chat|bench\.quick)$'

tsan_pass() {
  echo "== build (ThreadSanitizer)"
  cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DBLAZEBOT_WERROR=ON -DBLAZEBOT_TSAN=ON >/dev/null
  cmake --build build/tsan -j "$jobs"
  TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$(pwd)/tests/tsan.supp"
  export TSAN_OPTIONS
  # gcc 12's TSan cannot map its shadow memory with more than 28 bits of
  # mmap randomisation (newer kernels default to 32). Then the tests run
  # with address randomisation off for them (setarch -R, inherited by every
  # process they start); if even that fails, say so instead of failing every
  # test.
  norand=""
  if ! build/tsan/blazebot --version >/dev/null 2>build/tsan/preflight.err; then
    norand="setarch $(uname -m) -R"
    if ! $norand build/tsan/blazebot --version >/dev/null 2>>build/tsan/preflight.err; then
      cat build/tsan/preflight.err >&2
      echo "ThreadSanitizer cannot start here; with 'unexpected memory mapping' above," >&2
      echo "run: sudo sysctl vm.mmap_rnd_bits=28" >&2
      exit 1
    fi
    echo "(vm.mmap_rnd_bits is over 28: running the tests with setarch -R)"
  fi
  echo "== tests under ThreadSanitizer"
  (cd build/tsan && $norand ctest --output-on-failure -j "$test_jobs" --timeout 1800 -R "$TSAN_TESTS")
}

if [ "$mode" = --tsan ]; then
  tsan_pass
  exit 0
fi

echo "== build (RelWithDebInfo, -Werror)"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLAZEBOT_WERROR=ON >/dev/null
cmake --build build/test -j "$jobs"
echo "== tests"
(cd build/test && ctest --output-on-failure -j "$test_jobs" --timeout 900)

if [ "$mode" != --fast ]; then
  echo "== build (ASan + UBSan)"
  cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DBLAZEBOT_WERROR=ON -DBLAZEBOT_SANITIZE=ON >/dev/null
  cmake --build build/asan -j "$jobs"
  echo "== tests under ASan + UBSan"
  (cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j "$test_jobs" --timeout 1800)
  tsan_pass
fi
