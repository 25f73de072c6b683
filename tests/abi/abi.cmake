# SPDX-License-Identifier: MIT
# ABI tests, included from tests/CMakeLists.txt after integration.cmake (the
# refusal driver uses its harness). abi.layout pins every public struct and
# constant of blazebot/plugin.h at compile time. abi.refusals runs
# `blazebot --check` against fixture plugins that are broken on purpose, so
# they are plain MODULEs (PREFIX "", output abi_NAME.so in one folder) rather
# than blazebot_add_plugin() targets, whose export check would reject them.
if(NOT TARGET blazebot_harness)
  message(FATAL_ERROR "tests/abi/abi.cmake must be included after integration.cmake")
endif()
set(BLAZEBOT_ABI_DIR ${CMAKE_CURRENT_LIST_DIR})
set(BLAZEBOT_ABI_FIXTURE_OUT ${CMAKE_CURRENT_BINARY_DIR}/abi-fixtures)

add_executable(abi_layout ${BLAZEBOT_ABI_DIR}/test_layout.c)
target_link_libraries(abi_layout PRIVATE blazebot::sdk)
target_include_directories(abi_layout PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/common)
blazebot_warnings(abi_layout)
target_compile_options(abi_layout PRIVATE -Wpedantic)
add_test(NAME abi.layout COMMAND abi_layout)
set_tests_properties(abi.layout PROPERTIES TIMEOUT 60)

# blazebot_abi_fixture(NAME SOURCE [DEFINES...]) -> abi_NAME.so
set(BLAZEBOT_ABI_FIXTURES "")
function(blazebot_abi_fixture name source)
  add_library(abi_${name} MODULE ${BLAZEBOT_ABI_DIR}/${source})
  set_target_properties(abi_${name} PROPERTIES PREFIX "" C_STANDARD 11
    LIBRARY_OUTPUT_DIRECTORY ${BLAZEBOT_ABI_FIXTURE_OUT})
  target_link_libraries(abi_${name} PRIVATE blazebot::sdk)
  blazebot_warnings(abi_${name})
  if(ARGN)
    target_compile_definitions(abi_${name} PRIVATE ${ARGN})
  endif()
  set(BLAZEBOT_ABI_FIXTURES ${BLAZEBOT_ABI_FIXTURES} abi_${name} PARENT_SCOPE)
endfunction()

blazebot_abi_fixture(good fixture_good.c)
blazebot_abi_fixture(noentry fixture_noentry.c)
blazebot_abi_fixture(v2 fixture_v2.c)
blazebot_abi_fixture(v2_in_v1 fixture_v2.c V1_ENTRY)
blazebot_abi_fixture(newer_minor fixture_newer_minor.c)
blazebot_abi_fixture(tiny fixture_tiny.c)
blazebot_abi_fixture(null_desc fixture_tiny.c NULL_DESC)
blazebot_abi_fixture(no_on_message fixture_no_on_message.c)
blazebot_abi_fixture(init_fails fixture_init_fails.c)
blazebot_abi_fixture(init_fails_silently fixture_init_fails.c NO_REASON)
blazebot_abi_fixture(twin_a fixture_twin.c TWIN_VERSION="a")
blazebot_abi_fixture(twin_b fixture_twin.c TWIN_VERSION="b")
blazebot_abi_fixture(smallest fixture_smallest.c)

# An LD_PRELOAD shim whose memfd_create fails with ENOSYS: the refusal test
# runs the daemon's staged-file fallback with it.
add_library(abi_nomemfd MODULE ${BLAZEBOT_ABI_DIR}/nomemfd_preload.c)
set_target_properties(abi_nomemfd PROPERTIES PREFIX "" C_STANDARD 11
  LIBRARY_OUTPUT_DIRECTORY ${BLAZEBOT_ABI_FIXTURE_OUT})
blazebot_warnings(abi_nomemfd)
set(BLAZEBOT_ABI_FIXTURES ${BLAZEBOT_ABI_FIXTURES} abi_nomemfd)

add_executable(abi_refusals ${BLAZEBOT_ABI_DIR}/test_refusals.c)
target_link_libraries(abi_refusals PRIVATE blazebot_harness)
blazebot_warnings(abi_refusals)
target_compile_definitions(abi_refusals PRIVATE
  ABI_FIXTURE_DIR="$<TARGET_FILE_DIR:abi_good>")
add_dependencies(abi_refusals blazebot blazebot-sim ${BLAZEBOT_ABI_FIXTURES})
add_test(NAME abi.refusals COMMAND abi_refusals)
set_tests_properties(abi.refusals PROPERTIES TIMEOUT 600
  ENVIRONMENT "BLAZEBOT_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/tmp;BLAZEBOT_BIN=$<TARGET_FILE:blazebot>;BLAZEBOT_SIM_BIN=$<TARGET_FILE:blazebot-sim>")
