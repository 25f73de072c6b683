#!/bin/sh
# SPDX-License-Identifier: MIT
# package.deb: the Debian package as docs/operating.md ("Installing from the
# .deb") builds it. Configures a fresh build of the source tree in a scratch
# folder (CMAKE_INSTALL_PREFIX=/usr, RelWithDebInfo, no tests, the compiler
# and generator of BUILD_DIR), builds it, runs `cpack -G DEB`, then checks
#  - the control fields (name, the project's version, maintainer, section,
#    description, a Depends computed by dpkg-shlibdeps that names libjansson
#    and libssl), the conffile /etc/blazebot/blazebot.ini and the maintainer
#    scripts (valid sh, never enabling or starting the service);
#  - lintian: no error and no warning (copyright, changelog, stripped and
#    hardened binaries, manual pages, maintainer scripts);
#  - the file list: binaries, plugins (0644), headers, pkg-config and CMake
#    files, systemd unit, sysusers.d and tmpfiles.d snippets, the sample ini
#    and the examples; everything root/root, nothing writable by group or
#    others, nothing under /usr/local;
#  - the unpacked files (dpkg -x into a scratch root): the unit starts
#    /usr/bin/blazebot, the snippets and the sample ini name the packaged
#    plugin folder; a keystore made by the unpacked blazebot-sim and the
#    unpacked sample ini, pointed at that root, pass the unpacked
#    `blazebot --check` with the four first-party plugins loaded.
# Missing tools (cmake, cpack, dpkg-deb, dpkg-shlibdeps from dpkg-dev) fail
# the test: scripts/deps.sh installs them.
# Usage: test_deb.sh SOURCE_DIR BUILD_DIR SCRATCH_DIR [DEB_COPY]  (SCRATCH_DIR
# is removed when the test passes, kept for a look when it fails; the
# package is copied to DEB_COPY when it passes, for package.systemd)
# Environment: BLAZEBOT_CMAKE, BLAZEBOT_CPACK (default: from PATH),
# BLAZEBOT_TEST_JOBS (build jobs; default: nproc).
set -eu
umask 022

if [ $# -ne 3 ] && [ $# -ne 4 ]; then
  echo "usage: $0 SOURCE_DIR BUILD_DIR SCRATCH_DIR [DEB_COPY]" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
scratch=$3
deb_copy=${4:-}
case "$scratch" in
/ | "") echo "refusing scratch dir '$scratch'" >&2; exit 2 ;;
esac
rm -rf "$scratch"
mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)

fail() { echo "package.deb: FAILED: $*" >&2; echo "(scratch kept in $scratch)" >&2; exit 1; }
step() { echo "== $*"; }
# Every step is bounded; `timeout` is in coreutils.
t() { timeout 600 "$@"; }
# Runs a step with its output in a log, shown when it fails.
logged() {
  log=$1
  shift
  rc=0
  t "$@" >"$log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || { cat "$log" >&2; fail "$* exited $rc"; }
}

cmake=${BLAZEBOT_CMAKE:-cmake}
cpack=${BLAZEBOT_CPACK:-cpack}
for tool in "$cmake" "$cpack" dpkg dpkg-deb dpkg-shlibdeps lintian; do
  command -v "$tool" >/dev/null 2>&1 ||
    fail "$tool not found: install cmake, dpkg-dev and lintian (scripts/deps.sh does)"
done
jobs=${BLAZEBOT_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
version=$(sed -n 's/^project(blazebot VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || fail "no project version in $src/CMakeLists.txt"
arch=$(dpkg --print-architecture)
cache() { sed -n "s/^$1:[A-Z]*=//p" "$2/CMakeCache.txt"; }
cc=$(cache CMAKE_C_COMPILER "$build")
generator=$(cache CMAKE_GENERATOR "$build")

step "configure and build $src in $scratch/build (prefix /usr)"
set -- -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DBLAZEBOT_TESTS=OFF
[ -z "$cc" ] || set -- "$@" -DCMAKE_C_COMPILER="$cc"
[ -z "$generator" ] || set -- "$@" -G "$generator"
logged "$scratch/configure.log" "$cmake" -S "$src" -B "$scratch/build" "$@"
logged "$scratch/build.log" "$cmake" --build "$scratch/build" -j "$jobs"
libdir=$(cache CMAKE_INSTALL_LIBDIR "$scratch/build")
[ -n "$libdir" ] || fail "no CMAKE_INSTALL_LIBDIR in the scratch build"
plugindir=usr/$libdir/blazebot/plugins

step "cpack -G DEB"
(cd "$scratch/build" && logged "$scratch/cpack.log" "$cpack" -G DEB -B "$scratch/out")
deb=$scratch/out/blazebot_${version}_$arch.deb
[ -f "$deb" ] || { ls -l "$scratch/out" >&2; fail "no $(basename "$deb") (DEB-DEFAULT name)"; }
[ "$(find "$scratch/out" -maxdepth 1 -name '*.deb' | wc -l)" -eq 1 ] ||
  fail "more than one .deb in $scratch/out"

step "dpkg-deb -I $(basename "$deb")"
t dpkg-deb -I "$deb" >"$scratch/info.txt" || fail "dpkg-deb -I refuses the package"
cat "$scratch/info.txt"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = blazebot ] || fail "Package is '$(field Package)'"
[ "$(field Version)" = "$version" ] || fail "Version is '$(field Version)', not $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture is '$(field Architecture)'"
for f in Maintainer Section Description; do
  [ -n "$(field $f)" ] || fail "no $f field"
done
depends=$(field Depends)
for lib in libc6 libjansson libssl libwebsockets; do
  case "$depends" in
  *"$lib"*) ;;
  *) fail "Depends does not name $lib: '$depends'" ;;
  esac
done
t dpkg-deb -e "$deb" "$scratch/control"
[ "$(cat "$scratch/control/conffiles")" = /etc/blazebot/blazebot.ini ] ||
  fail "conffiles is not just /etc/blazebot/blazebot.ini: $(cat "$scratch/control/conffiles")"
for s in postinst prerm postrm; do
  [ -x "$scratch/control/$s" ] || fail "no executable $s"
  sh -n "$scratch/control/$s" || fail "$s is not valid sh"
  if grep -Eq '(systemctl|deb-systemd-invoke|deb-systemd-helper).*(enable|start|restart)' "$scratch/control/$s"; then
    fail "$s enables or starts the service"
  fi
done

step "lintian $(basename "$deb")"
# No error and no warning (informational tags are shown, not fatal).
logged "$scratch/lintian.log" lintian --fail-on error,warning --tag-display-limit 0 \
  --display-info "$deb"
cat "$scratch/lintian.log"

step "dpkg-deb -c $(basename "$deb")"
t dpkg-deb -c "$deb" >"$scratch/contents.txt" || fail "dpkg-deb -c failed"
# Lines: MODE OWNER/GROUP SIZE DATE TIME ./PATH
awk '$2 != "root/root" { print "not root/root: " $0; bad = 1 }
  substr($1, 6, 1) == "w" || substr($1, 9, 1) == "w" { print "group/other writable: " $0; bad = 1 }
  $6 ~ /^\.\/usr\/local/ { print "under /usr/local: " $0; bad = 1 }
  END { exit bad }' "$scratch/contents.txt" >&2 || fail "bad entries in the package"
mode_of() { awk -v p="./$1" '$6 == p { print $1 }' "$scratch/contents.txt"; }
expect() {
  mode=$1
  shift
  for p in "$@"; do
    got=$(mode_of "$p")
    [ -n "$got" ] || fail "not in the package: /$p"
    [ "$got" = "$mode" ] || fail "/$p is $got, not $mode"
  done
}
expect -rwxr-xr-x usr/bin/blazebot usr/bin/blazebot-sim
expect -rw-r--r-- "$plugindir/echo.so" "$plugindir/commands.so" "$plugindir/welcome.so" \
  "$plugindir/archive.so"
for so in $(awk -v d="./$plugindir/" 'index($6, d) == 1 && $6 != d { print substr($6, 3) }' "$scratch/contents.txt"); do
  expect -rw-r--r-- "$so"
done
expect drwxr-xr-x "$plugindir/" "usr/$libdir/blazebot/" etc/blazebot/
expect -rw-r--r-- usr/include/blazebot/plugin.h usr/include/blazebot/testing.h \
  "usr/$libdir/pkgconfig/blazebot.pc" "usr/$libdir/cmake/blazebot/blazebotConfig.cmake" \
  "usr/$libdir/cmake/blazebot/blazebotConfigVersion.cmake" \
  "usr/$libdir/cmake/blazebot/BlazebotPlugin.cmake" \
  "usr/$libdir/cmake/blazebot/BlazebotCheckPlugin.cmake" \
  lib/systemd/system/blazebot.service usr/lib/sysusers.d/blazebot.conf \
  usr/lib/tmpfiles.d/blazebot.conf etc/blazebot/blazebot.ini \
  usr/share/blazebot/examples/blazebot.ini usr/share/doc/blazebot/copyright \
  usr/share/doc/blazebot/changelog.gz usr/share/man/man8/blazebot.8.gz \
  usr/share/man/man1/blazebot-sim.1.gz
for f in CMakeLists.txt Makefile README.md hello.c test_hello.c; do
  expect -rw-r--r-- "usr/share/blazebot/examples/hello-plugin/$f"
done
for f in CMakeLists.txt Makefile README.md image.c test_image.c cat.png; do
  expect -rw-r--r-- "usr/share/blazebot/examples/image-plugin/$f"
done
echo "$(grep -c '^-' "$scratch/contents.txt") files, plugins in /$plugindir"

step "dpkg -x into $scratch/root"
root=$scratch/root
t dpkg -x "$deb" "$root"
cmp "$src/examples/blazebot.ini" "$root/usr/share/blazebot/examples/blazebot.ini"
unit=$root/lib/systemd/system/blazebot.service
grep -q '^ExecStart=/usr/bin/blazebot -c /etc/blazebot/blazebot.ini$' "$unit" ||
  fail "the unit does not start /usr/bin/blazebot: $(grep '^ExecStart=' "$unit")"
if grep '^Exec' "$unit" | grep -v '^ExecReload=/bin/kill ' | grep -v '=/usr/bin/blazebot '; then
  fail "the unit runs something other than /usr/bin/blazebot"
fi
grep -q "^u blazebot " "$root/usr/lib/sysusers.d/blazebot.conf" || fail "sysusers: no user blazebot"
grep -q "^d /$plugindir 0755 root root" "$root/usr/lib/tmpfiles.d/blazebot.conf" ||
  fail "tmpfiles does not name /$plugindir"
grep -q "^d /etc/blazebot " "$root/usr/lib/tmpfiles.d/blazebot.conf" ||
  fail "tmpfiles does not make /etc/blazebot"
grep -Eq "^[;[:space:]]*plugin_dir = /$plugindir\$" "$root/etc/blazebot/blazebot.ini" ||
  fail "the sample ini does not name /$plugindir"
"$root/usr/bin/blazebot" --version | grep -qF "$version" || fail "blazebot --version is not $version"

step "the unpacked blazebot --check with the unpacked sample ini"
etc=$root/etc/blazebot
t "$root/usr/bin/blazebot-sim" keygen -o "$etc/keystore.json" >/dev/null
ini=$etc/blazebot.ini
# The packaged sample with keystore and plugin_dir pointing into the root,
# and the four first-party plugins enabled.
sed -e '/^[[:space:]]*keystore[[:space:]]*=/d' -e '/^[[:space:]]*plugin_dir[[:space:]]*=/d' \
  -e "/^\[blazebot\]/a keystore = $etc/keystore.json\\
plugin_dir = $root/$plugindir" "$etc/blazebot.ini" >"$scratch/test.ini"
cat >>"$scratch/test.ini" <<EOF

[plugin.commands]
[plugin.echo]
[plugin.welcome]
[plugin.archive]
file = $scratch/archive.jsonl
EOF
mv "$scratch/test.ini" "$ini"
grep -qx "plugin_dir = $root/$plugindir" "$ini" || fail "could not set plugin_dir in $ini"
rc=0
t "$root/usr/bin/blazebot" -c "$ini" --check >"$scratch/check.out" 2>"$scratch/check.err" || rc=$?
[ "$rc" -eq 0 ] ||
  { cat "$scratch/check.out" "$scratch/check.err" >&2; fail "blazebot --check exited $rc"; }
cat "$scratch/check.out"
grep -q "configuration OK" "$scratch/check.out" || fail "--check did not say configuration OK"
grep -q "4 plugin(s) loaded" "$scratch/check.out" || fail "--check did not load the 4 plugins"

if [ -n "$deb_copy" ]; then
  cp "$deb" "$deb_copy.tmp" && mv "$deb_copy.tmp" "$deb_copy" || fail "cannot copy the package to $deb_copy"
fi
rm -rf "$scratch"
echo "package.deb: ok ($(basename "$deb"); Depends: $depends)"
