# SPDX-License-Identifier: MIT
# package.deb: builds the Debian package from a fresh build of this source
# tree (prefix /usr, in a scratch folder of its own, so it does not depend on
# how this build tree was configured; sanitizers are not packaged), then
# checks its metadata and file list and runs the unpacked daemon's --check
# (test_deb.sh). It builds the project once more, hence RUN_SERIAL.
add_test(NAME package.deb
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_deb.sh ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}
    ${CMAKE_CURRENT_BINARY_DIR}/packaging ${CMAKE_CURRENT_BINARY_DIR}/blazebot.deb)
set_tests_properties(package.deb PROPERTIES TIMEOUT 1200 RUN_SERIAL TRUE
  FIXTURES_SETUP blazebot_deb
  ENVIRONMENT "BLAZEBOT_CMAKE=${CMAKE_COMMAND};BLAZEBOT_CPACK=${CMAKE_CPACK_COMMAND}")

# package.systemd: that package installed, started, reloaded, watched and
# stopped by a real systemd booted in namespaces of its own on an overlay of
# the root (test_systemd.sh, systemd_boot.sh). Needs root; RUN_SERIAL: it
# boots a whole init system.
add_test(NAME package.systemd
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_systemd.sh ${CMAKE_CURRENT_BINARY_DIR}/blazebot.deb
    ${CMAKE_CURRENT_BINARY_DIR}/systemd)
set_tests_properties(package.systemd PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE
  SKIP_RETURN_CODE 77 FIXTURES_REQUIRED blazebot_deb)
