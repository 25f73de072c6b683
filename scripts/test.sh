#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs every test: builds with -Werror and runs the suite, then builds again
# with AddressSanitizer + UBSan (leak checking on) and runs it again.
# Usage: scripts/test.sh [--fast]   (--fast: skip the sanitizer pass)
set -e
cd "$(dirname "$0")/.."
. scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (RelWithDebInfo, -Werror)"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLAZEBOT_WERROR=ON >/dev/null
cmake --build build/test -j "$jobs"
echo "== tests"
(cd build/test && ctest --output-on-failure -j 2 --timeout 900)

if [ "$1" != "--fast" ]; then
  echo "== build (ASan + UBSan)"
  cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DBLAZEBOT_WERROR=ON -DBLAZEBOT_SANITIZE=ON >/dev/null
  cmake --build build/asan -j "$jobs"
  echo "== tests under ASan + UBSan"
  (cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j 2 --timeout 1800)
fi
