#!/bin/sh
# SPDX-License-Identifier: MIT
# The SDK as a third party gets it: installs the build tree into a scratch
# prefix, then builds examples/hello-plugin out of tree against that prefix
# twice, with CMake (find_package + blazebot_add_plugin, -Werror) and with
# its Makefile (pkg-config), and checks each hello.so with the installed
# BlazebotCheckPlugin.cmake and runs its unit test (the installed
# blazebot/testing.h). Also checks that the first-party plugins were
# installed and that `make install` honours the SDK's plugindir.
# Usage: outoftree.sh BUILD_DIR SCRATCH_DIR   (SCRATCH_DIR is removed after)
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SCRATCH_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
scratch=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
example=$src/examples/hello-plugin

case "$scratch" in
/ | "") echo "refusing scratch dir '$scratch'" >&2; exit 2 ;;
esac
rm -rf "$scratch"
mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)
trap 'rm -rf "$scratch"' EXIT INT TERM

# Every step is bounded; `timeout` is in coreutils.
t() { timeout 300 "$@"; }
step() { echo "== $*"; }

prefix=$scratch/prefix
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
libdir=${libdir:-lib}
nm=$(sed -n 's/^CMAKE_NM:[A-Z]*=//p' "$build/CMakeCache.txt")
readelf=$(sed -n 's/^CMAKE_READELF:[A-Z]*=//p' "$build/CMakeCache.txt")
check="$prefix/$libdir/cmake/blazebot/BlazebotCheckPlugin.cmake"

step "install $build into $prefix"
t cmake --install "$build" --prefix "$prefix" >"$scratch/install.log" ||
  { cat "$scratch/install.log"; exit 1; }
for f in include/blazebot/plugin.h include/blazebot/testing.h \
  "$libdir/pkgconfig/blazebot.pc" "$libdir/cmake/blazebot/blazebotConfig.cmake" \
  "$libdir/cmake/blazebot/blazebotConfigVersion.cmake" \
  "$libdir/cmake/blazebot/BlazebotPlugin.cmake" "$libdir/blazebot/plugins/echo.so" \
  "$libdir/blazebot/plugins/commands.so" "$libdir/blazebot/plugins/archive.so"; do
  [ -f "$prefix/$f" ] || { echo "not installed: $f" >&2; exit 1; }
done

step "hello with CMake (find_package + blazebot_add_plugin)"
t cmake -S "$example" -B "$scratch/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DBLAZEBOT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$scratch/cmake.log" ||
  { cat "$scratch/cmake.log"; exit 1; }
t cmake --build "$scratch/cmake" >>"$scratch/cmake.log" 2>&1 ||
  { cat "$scratch/cmake.log"; exit 1; }
t cmake -DPLUGIN="$scratch/cmake/hello.so" -DNM="$nm" -DREADELF="$readelf" -DONLY_LIBC=ON \
  -P "$check"
(cd "$scratch/cmake" && t ctest --output-on-failure >>"$scratch/cmake.log" 2>&1) ||
  { cat "$scratch/cmake.log"; exit 1; }
DESTDIR="$scratch/dest-cmake" t cmake --install "$scratch/cmake" --prefix /opt/bb >/dev/null
hello_libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$scratch/cmake/CMakeCache.txt")
[ -f "$scratch/dest-cmake/opt/bb/${hello_libdir:-lib}/blazebot/plugins/hello.so" ] ||
  { echo "cmake --install put hello.so elsewhere" >&2; exit 1; }

step "hello with make (pkg-config)"
mkdir "$scratch/make"
cp "$example/hello.c" "$example/test_hello.c" "$example/Makefile" "$scratch/make/"
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" t make -C "$scratch/make" hello.so check \
  CFLAGS="-O2 -Wall -Wextra -Werror" >"$scratch/make.log" 2>&1 ||
  { cat "$scratch/make.log"; exit 1; }
t cmake -DPLUGIN="$scratch/make/hello.so" -DNM="$nm" -DREADELF="$readelf" -DONLY_LIBC=ON \
  -P "$check"
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" t make -C "$scratch/make" install \
  DESTDIR="$scratch/dest-make" >/dev/null
plugindir=$(PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" pkg-config --variable=plugindir blazebot)
[ -f "$scratch/dest-make$plugindir/hello.so" ] ||
  { echo "make install put hello.so elsewhere than $plugindir" >&2; exit 1; }

echo "outoftree: ok"
