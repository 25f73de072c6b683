#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs blazebot's build dependencies from Debian's packages when any is
# missing. Sourced by the demo and test scripts; safe to run again.
# dpkg-dev brings dpkg-shlibdeps, which `cpack -G DEB` (the test package.deb)
# needs to compute the package's Depends, and lintian checks the package.
# libnats-dev builds the nats plugin
# and nats-server runs its tests (tests/nats/; without them the plugin is not
# built and the tests are skipped, except under CI=true where they fail).
# Node.js and npm run the Node worker of examples/nats-worker (nats.node);
# a Node.js already installed (NodeSource's, say) is kept.
set -e
BLAZEBOT_PACKAGES="build-essential cmake pkg-config dpkg-dev libwebsockets-dev libssl-dev zlib1g-dev libjansson-dev libinih-dev libnats-dev nats-server lintian"
missing=""
for p in $BLAZEBOT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing: nodejs npm" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nodejs npm
fi
