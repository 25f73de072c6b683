# SPDX-License-Identifier: MIT
# The Debian package (docs/operating.md, "Installing from the .deb"):
#
#   cmake -S . -B build/deb -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr
#   cmake --build build/deb -j
#   cd build/deb && cpack -G DEB          # blazebot_VERSION_ARCH.deb
#
# Included last from the top-level CMakeLists.txt, after every other install
# rule. The package holds everything `cmake --install` installs (binaries,
# plugins, SDK headers, CMake package, pkg-config file, examples) plus the
# system files below.
#
# Install prefix vs. system files. The system files live at absolute paths
# that do not follow CMAKE_INSTALL_PREFIX (/lib/systemd/system,
# /usr/lib/sysusers.d, /usr/lib/tmpfiles.d, /etc/blazebot). Their install
# rules belong to the component "system" with EXCLUDE_FROM_ALL, so
#  - `cmake --install BUILD [--prefix DIR]` installs only the ordinary
#    components, under DIR, and never writes to /etc or /lib (the
#    out-of-tree test installs into a scratch prefix);
#  - `cmake --install BUILD --component system` installs them on this machine
#    by hand (as root, at their absolute paths);
#  - cpack takes both: CPACK_INSTALL_CMAKE_PROJECTS lists the build tree twice,
#    for every ordinary component ("ALL") and for "system", and
#    CPACK_SET_DESTDIR stages the whole install under DESTDIR, so the absolute
#    paths land in the package, not on the machine that builds it.
# The package's paths are CMAKE_INSTALL_PREFIX's: configure the build tree
# with -DCMAKE_INSTALL_PREFIX=/usr (GNUInstallDirs then puts the plugins in
# /usr/lib/<multiarch>/blazebot/plugins). Building a .deb from a tree with
# another prefix works but warns.
include_guard(GLOBAL)

set(BLAZEBOT_SYSTEMD_UNIT_DIR /lib/systemd/system
  CACHE PATH "Where the package puts blazebot.service (Debian 12: /lib/systemd/system)")
set(BLAZEBOT_SYSUSERS_DIR /usr/lib/sysusers.d
  CACHE PATH "Where the package puts the sysusers.d snippet")
set(BLAZEBOT_TMPFILES_DIR /usr/lib/tmpfiles.d
  CACHE PATH "Where the package puts the tmpfiles.d snippet")
set(BLAZEBOT_PACKAGE_MAINTAINER "blazebot maintainers <blazebot@example.org>"
  CACHE STRING "The Maintainer field of the .deb: \"Name <email>\"")

# The files in examples/ name /usr/local (a `cmake --install --prefix
# /usr/local`); the packaged copies name this build's own paths instead.
if(IS_ABSOLUTE "${BLAZEBOT_PLUGIN_INSTALL_DIR}")
  set(_blazebot_plugin_dir "${BLAZEBOT_PLUGIN_INSTALL_DIR}")
else()
  set(_blazebot_plugin_dir "${CMAKE_INSTALL_PREFIX}/${BLAZEBOT_PLUGIN_INSTALL_DIR}")
endif()
set(_blazebot_pkg_dir "${CMAKE_CURRENT_BINARY_DIR}/package")
function(_blazebot_package_copy src dst header)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${src}")
  file(READ "${src}" text)
  string(REPLACE "/usr/local/bin/" "${CMAKE_INSTALL_FULL_BINDIR}/" text "${text}")
  string(REPLACE "/usr/local/lib/blazebot/plugins" "${_blazebot_plugin_dir}" text "${text}")
  set(text "${header}\n${text}")
  set(old "")
  if(EXISTS "${_blazebot_pkg_dir}/${dst}")
    file(READ "${_blazebot_pkg_dir}/${dst}" old)
  endif()
  if(NOT old STREQUAL text)
    file(WRITE "${_blazebot_pkg_dir}/${dst}" "${text}")
  endif()
endfunction()
_blazebot_package_copy(${PROJECT_SOURCE_DIR}/examples/systemd/blazebot.service
  blazebot.service
  "# Installed by the blazebot package from examples/systemd/blazebot.service.\n# Change it with a drop-in (systemctl edit blazebot), not here.")
_blazebot_package_copy(${PROJECT_SOURCE_DIR}/examples/systemd/blazebot.tmpfiles
  blazebot.tmpfiles "# Installed by the blazebot package.")
_blazebot_package_copy(${PROJECT_SOURCE_DIR}/examples/systemd/blazebot.sysusers
  blazebot.sysusers "# Installed by the blazebot package.")
_blazebot_package_copy(${PROJECT_SOURCE_DIR}/examples/blazebot.ini blazebot.ini
  "; /etc/blazebot/blazebot.ini, from the blazebot package (a conffile: an upgrade\n; keeps your changes). Put the bot's keystore next to it as keystore.json\n; (chown blazebot, chmod 600), then: blazebot --check.")

install(FILES ${_blazebot_pkg_dir}/blazebot.service
  DESTINATION ${BLAZEBOT_SYSTEMD_UNIT_DIR} COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${_blazebot_pkg_dir}/blazebot.sysusers DESTINATION ${BLAZEBOT_SYSUSERS_DIR}
  RENAME blazebot.conf COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${_blazebot_pkg_dir}/blazebot.tmpfiles DESTINATION ${BLAZEBOT_TMPFILES_DIR}
  RENAME blazebot.conf COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${_blazebot_pkg_dir}/blazebot.ini DESTINATION /etc/blazebot
  COMPONENT system EXCLUDE_FROM_ALL)

# /usr/share/doc/blazebot: the copyright file (machine-readable, from
# LICENSE) and a changelog.gz, as Debian policy wants of every package
# (lintian checks both in package.deb). Packaging only, like the above.
file(READ ${PROJECT_SOURCE_DIR}/LICENSE _blazebot_license)
string(REGEX REPLACE "^MIT License\n\n" "" _blazebot_license "${_blazebot_license}")
string(REGEX REPLACE "\n$" "" _blazebot_license "${_blazebot_license}")
string(REGEX MATCH "Copyright \\(c\\) ([^\n]*)" _ "${_blazebot_license}")
set(_blazebot_holder "${CMAKE_MATCH_1}")
string(REGEX REPLACE "^Copyright[^\n]*\n\n" "" _blazebot_license "${_blazebot_license}")
string(REPLACE "\n\n" "\n.\n" _blazebot_license "${_blazebot_license}")
string(REPLACE "\n" "\n " _blazebot_license "${_blazebot_license}")
file(WRITE ${_blazebot_pkg_dir}/copyright
  "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
  "Upstream-Name: blazebot\n\n"
  "Files: *\nCopyright: ${_blazebot_holder}\nLicense: Expat\n\n"
  "License: Expat\n ${_blazebot_license}\n")
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/changelog.in ${_blazebot_pkg_dir}/changelog
  @ONLY)
execute_process(COMMAND gzip -9nf ${_blazebot_pkg_dir}/changelog
  RESULT_VARIABLE _blazebot_rc)
if(NOT _blazebot_rc EQUAL 0)
  message(FATAL_ERROR "blazebot: gzip of the package's changelog failed (${_blazebot_rc})")
endif()
install(FILES ${_blazebot_pkg_dir}/copyright ${_blazebot_pkg_dir}/changelog.gz
  DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT system EXCLUDE_FROM_ALL)
unset(_blazebot_license)
unset(_blazebot_holder)

# Maintainer scripts, after dh_installsysusers/dh_installtmpfiles/
# dh_installsystemd but smaller: make the user and the folders, tell systemd
# about the unit, stop the service on removal. The service is never enabled
# or started here: it needs a keystore first (docs/operating.md).
file(WRITE ${_blazebot_pkg_dir}/conffiles "/etc/blazebot/blazebot.ini\n")
file(WRITE ${_blazebot_pkg_dir}/postinst [=[#!/bin/sh
set -e
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-remove ]; then
  if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers ${DPKG_ROOT:+--root="$DPKG_ROOT"} blazebot.conf
  fi
  if command -v systemd-tmpfiles >/dev/null 2>&1; then
    systemd-tmpfiles ${DPKG_ROOT:+--root="$DPKG_ROOT"} --create blazebot.conf || true
  fi
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl --system daemon-reload >/dev/null || true
  fi
fi
exit 0
]=])
file(WRITE ${_blazebot_pkg_dir}/prerm [=[#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ] && command -v deb-systemd-invoke >/dev/null 2>&1; then
  deb-systemd-invoke stop blazebot.service >/dev/null || true
fi
exit 0
]=])
file(WRITE ${_blazebot_pkg_dir}/postrm [=[#!/bin/sh
set -e
if [ "$1" = purge ]; then
  rm -f /etc/systemd/system/multi-user.target.wants/blazebot.service
fi
if [ "$1" = remove ] || [ "$1" = purge ]; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl --system daemon-reload >/dev/null || true
  fi
fi
exit 0
]=])

# Runs in cpack on the staged tree, before the .deb is made: plugins 0644
# (install(TARGETS) makes them 0755; the daemon wants nothing writable by
# group or others, Debian wants shared objects not executable), and a
# warning when the prefix is not /usr.
file(WRITE ${_blazebot_pkg_dir}/prebuild.cmake
  "set(_plugin_dir \"${_blazebot_plugin_dir}\")\n" [=[
if(NOT CPACK_INSTALL_PREFIX STREQUAL "/usr")
  message(WARNING "blazebot: packaging a build configured with CMAKE_INSTALL_PREFIX="
    "${CPACK_INSTALL_PREFIX}; a Debian package wants -DCMAKE_INSTALL_PREFIX=/usr")
endif()
file(GLOB _plugins "${CPACK_TEMPORARY_INSTALL_DIRECTORY}${_plugin_dir}/*.so")
if(NOT _plugins)
  message(FATAL_ERROR "blazebot: no plugins staged in ${CPACK_TEMPORARY_INSTALL_DIRECTORY}${_plugin_dir}")
endif()
file(CHMOD ${_plugins} PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
]=])

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME blazebot)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "blazebot")
set(CPACK_PACKAGE_CONTACT "${BLAZEBOT_PACKAGE_MAINTAINER}")
set(CPACK_INSTALL_CMAKE_PROJECTS
  "${CMAKE_BINARY_DIR};${PROJECT_NAME};ALL;/"
  "${CMAKE_BINARY_DIR};${PROJECT_NAME};system;/")
set(CPACK_SET_DESTDIR ON)
# Stripped binaries and plugins, as Debian ships them (lintian: unstripped-binary).
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
  GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(CPACK_PRE_BUILD_SCRIPTS ${_blazebot_pkg_dir}/prebuild.cmake)

set(CPACK_DEBIAN_PACKAGE_NAME blazebot)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${BLAZEBOT_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "bot daemon for Mixin Messenger
blazebot keeps one authenticated connection to Mixin's Blaze WebSocket
server for days at a time, hands every message to shared-object plugins,
and acknowledges it only after the processing is done, so a dropped link or
a crash never leaves a message acknowledged but unanswered.

This package has the daemon, the first-party plugins (echo, commands,
welcome, archive), the local Blaze simulator blazebot-sim, a hardened
systemd unit (not enabled at install), a sample configuration in
/etc/blazebot, and the plugin SDK: headers, CMake package, pkg-config
file and example plugins.")
# Depends: computed by dpkg-shlibdeps (package dpkg-dev) from the binaries.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${_blazebot_pkg_dir}/conffiles
  ${_blazebot_pkg_dir}/postinst ${_blazebot_pkg_dir}/prerm ${_blazebot_pkg_dir}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# `make package_source` would otherwise pack the build folders too.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build/")

include(CPack)
unset(_blazebot_plugin_dir)
unset(_blazebot_pkg_dir)
