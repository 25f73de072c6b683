# SPDX-License-Identifier: MIT
# package.deb: builds the Debian package from a fresh build of this source
# tree (prefix /usr, in a scratch folder of its own, so it does not depend on
# how this build tree was configured; sanitizers are not packaged), then
# checks its metadata and file list and runs the unpacked daemon's --check
# (test_deb.sh). It builds the project once more, hence RUN_SERIAL.
add_test(NAME package.deb
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_deb.sh ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}
    ${CMAKE_CURRENT_BINARY_DIR}/packaging)
set_tests_properties(package.deb PROPERTIES TIMEOUT 1200 RUN_SERIAL TRUE
  ENVIRONMENT "BLAZEBOT_CMAKE=${CMAKE_COMMAND};BLAZEBOT_CPACK=${CMAKE_CPACK_COMMAND}")
