#!/bin/sh
# SPDX-License-Identifier: MIT
# The SDK as a third party gets it: installs the build tree into a scratch
# prefix, checks that the examples were installed (share/blazebot/examples,
# identical to examples/) and that the installed blazebot.ini names every
# [blazebot] key of core/config.c, compiles the installed headers as strict
# C99, then builds the INSTALLED copy of hello-plugin out of tree against
# that prefix twice, with CMake (find_package + blazebot_add_plugin, -Werror)
# and with its Makefile (pkg-config), both with -std=c99, and checks each
# hello.so with the installed BlazebotCheckPlugin.cmake and runs its unit
# test (the installed blazebot/testing.h). The three-line Makefile that
# docs/plugins.md shows must be in the installed Makefile verbatim and build
# on its own. The installed image-plugin (the upload service) is built the
# same two ways, checked, and its unit test run. Also checks that the
# first-party plugins were installed and that `make install` honours the
# SDK's plugindir.
# Usage: outoftree.sh BUILD_DIR SCRATCH_DIR   (SCRATCH_DIR is removed after)
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SCRATCH_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
scratch=$2
src=$(cd "$(dirname "$0")/../.." && pwd)

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
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
cc=${cc:-cc}
# GNUInstallDirs caches DATADIR empty and derives it from DATAROOTDIR.
datadir=$(sed -n 's/^CMAKE_INSTALL_DATADIR:[A-Z]*=//p' "$build/CMakeCache.txt")
[ -n "$datadir" ] ||
  datadir=$(sed -n 's/^CMAKE_INSTALL_DATAROOTDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
datadir=${datadir:-share}
check="$prefix/$libdir/cmake/blazebot/BlazebotCheckPlugin.cmake"
examples=$prefix/$datadir/blazebot/examples
example=$examples/hello-plugin
hello_files="CMakeLists.txt Makefile README.md hello.c test_hello.c"
image_example=$examples/image-plugin
image_files="CMakeLists.txt Makefile README.md image.c test_image.c cat.png"
# The -std options of the compile commands read on stdin, sorted, one line.
stds() { grep -o -- '-std=[a-z0-9+]*' | sort -u | tr '\n' ' '; }

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

step "examples installed in $examples"
cmp "$src/examples/blazebot.ini" "$examples/blazebot.ini"
for f in $hello_files; do
  cmp "$src/examples/hello-plugin/$f" "$example/$f"
done
for f in $image_files; do
  cmp "$src/examples/image-plugin/$f" "$image_example/$f"
done
# The sample configuration promises every [blazebot] key (commented out when
# it has no default).
keys=$(sed -n 's/^ *KEY(\([a-z_]*\),.*/\1/p' "$src/core/config.c")
[ -n "$keys" ] || { echo "no KEY(...) entries found in core/config.c" >&2; exit 1; }
for k in $keys; do
  grep -Eq "^[;[:space:]]*$k[[:space:]]*=" "$examples/blazebot.ini" ||
    { echo "installed blazebot.ini does not list the key $k" >&2; exit 1; }
done

step "the installed headers compile as strict C99"
printf '#include <blazebot/plugin.h>\n#include <blazebot/testing.h>\nint main(void) { return 0; }\n' \
  >"$scratch/c99.c"
for f in "$scratch/c99.c" "$example/hello.c" "$example/test_hello.c" \
  "$image_example/image.c" "$image_example/test_image.c"; do
  t "$cc" -std=c99 -pedantic-errors -Wall -Wextra -Werror -fsyntax-only \
    -I"$prefix/include" "$f"
done

step "installed hello with CMake (find_package + blazebot_add_plugin)"
t cmake -S "$example" -B "$scratch/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DBLAZEBOT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$scratch/cmake.log" ||
  { cat "$scratch/cmake.log"; exit 1; }
t cmake --build "$scratch/cmake" >>"$scratch/cmake.log" 2>&1 ||
  { cat "$scratch/cmake.log"; exit 1; }
cmake_std=$(grep '"command"' "$scratch/cmake/compile_commands.json" | stds)
[ "$cmake_std" = "-std=c99 " ] ||
  { echo "CMake compiles hello with '$cmake_std', not -std=c99 alone" >&2; exit 1; }
t cmake -DPLUGIN="$scratch/cmake/hello.so" -DNM="$nm" -DREADELF="$readelf" -DONLY_LIBC=ON \
  -P "$check"
(cd "$scratch/cmake" && t ctest --output-on-failure >>"$scratch/cmake.log" 2>&1) ||
  { cat "$scratch/cmake.log"; exit 1; }
DESTDIR="$scratch/dest-cmake" t cmake --install "$scratch/cmake" --prefix /opt/bb >/dev/null
hello_libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$scratch/cmake/CMakeCache.txt")
[ -f "$scratch/dest-cmake/opt/bb/${hello_libdir:-lib}/blazebot/plugins/hello.so" ] ||
  { echo "cmake --install put hello.so elsewhere" >&2; exit 1; }

step "installed hello with make (pkg-config), copied as the guide says"
cp -R "$example" "$scratch/make"
# Extra flags through the environment, as the guide says.
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" CFLAGS="-O2 -Werror" \
  t make -C "$scratch/make" hello.so check >"$scratch/make.log" 2>&1 ||
  { cat "$scratch/make.log"; exit 1; }
t cmake -DPLUGIN="$scratch/make/hello.so" -DNM="$nm" -DREADELF="$readelf" -DONLY_LIBC=ON \
  -P "$check"
make_std=$(grep -e '-o hello.so' -e '-o test_hello' "$scratch/make.log" | stds)
[ "$make_std" = "-std=c99 " ] ||
  { echo "make compiles hello with '$make_std', not -std=c99 alone" >&2; exit 1; }
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" t make -C "$scratch/make" install \
  DESTDIR="$scratch/dest-make" >/dev/null
plugindir=$(PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" pkg-config --variable=plugindir blazebot)
[ -f "$scratch/dest-make$plugindir/hello.so" ] ||
  { echo "make install put hello.so elsewhere than $plugindir" >&2; exit 1; }

step "the guide's three-line Makefile (docs/plugins.md), alone"
mkdir "$scratch/guide"
awk '/^```make$/ { on = 1; next } /^```$/ { on = 0 } on' "$src/docs/plugins.md" \
  >"$scratch/guide/Makefile"
[ "$(grep -c . "$scratch/guide/Makefile")" -eq 3 ] ||
  { echo "docs/plugins.md: the make block is not three lines:" >&2;
    cat "$scratch/guide/Makefile" >&2; exit 1; }
while IFS= read -r line; do
  grep -qxF -e "$line" "$example/Makefile" ||
    { echo "the installed Makefile lacks the guide's line: $line" >&2; exit 1; }
done <"$scratch/guide/Makefile"
cp "$example/hello.c" "$scratch/guide/"
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" CFLAGS="-Werror" \
  t make -C "$scratch/guide" >"$scratch/guide.log" 2>&1 ||
  { cat "$scratch/guide.log"; exit 1; }
t cmake -DPLUGIN="$scratch/guide/hello.so" -DNM="$nm" -DREADELF="$readelf" -DONLY_LIBC=ON \
  -P "$check"

step "installed image-plugin with CMake (find_package + blazebot_add_plugin)"
t cmake -S "$image_example" -B "$scratch/image-cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DBLAZEBOT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$scratch/image-cmake.log" ||
  { cat "$scratch/image-cmake.log"; exit 1; }
t cmake --build "$scratch/image-cmake" >>"$scratch/image-cmake.log" 2>&1 ||
  { cat "$scratch/image-cmake.log"; exit 1; }
cmake_std=$(grep '"command"' "$scratch/image-cmake/compile_commands.json" | stds)
[ "$cmake_std" = "-std=c99 " ] ||
  { echo "CMake compiles image with '$cmake_std', not -std=c99 alone" >&2; exit 1; }
t cmake -DPLUGIN="$scratch/image-cmake/image.so" -DNM="$nm" -DREADELF="$readelf" \
  -DONLY_LIBC=ON -P "$check"
(cd "$scratch/image-cmake" && t ctest --output-on-failure >>"$scratch/image-cmake.log" 2>&1) ||
  { cat "$scratch/image-cmake.log"; exit 1; }
grep -q 'test_image: ok' "$scratch/image-cmake/Testing/Temporary/LastTest.log" ||
  { echo "test_image did not report ok" >&2; cat "$scratch/image-cmake.log"; exit 1; }

step "installed image-plugin with make (pkg-config), copied"
cp -R "$image_example" "$scratch/image-make"
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" CFLAGS="-O2 -Werror" \
  t make -C "$scratch/image-make" image.so check >"$scratch/image-make.log" 2>&1 ||
  { cat "$scratch/image-make.log"; exit 1; }
grep -q 'test_image: ok' "$scratch/image-make.log" ||
  { echo "make check did not run test_image" >&2; cat "$scratch/image-make.log"; exit 1; }
t cmake -DPLUGIN="$scratch/image-make/image.so" -DNM="$nm" -DREADELF="$readelf" \
  -DONLY_LIBC=ON -P "$check"
make_std=$(grep -e '-o image.so' -e '-o test_image' "$scratch/image-make.log" | stds)
[ "$make_std" = "-std=c99 " ] ||
  { echo "make compiles image with '$make_std', not -std=c99 alone" >&2; exit 1; }

echo "outoftree: ok"
