# SPDX-License-Identifier: MIT
# Integration tests: the real daemon against the real simulator, loopback
# only. Each test gets its own scratch folder under the build tree.
add_library(blazebot_harness STATIC integration/harness.c)
target_link_libraries(blazebot_harness PUBLIC PkgConfig::JANSSON)
target_include_directories(blazebot_harness PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/integration
  ${CMAKE_CURRENT_SOURCE_DIR}/common)
target_compile_definitions(blazebot_harness PUBLIC _GNU_SOURCE)
blazebot_warnings(blazebot_harness)

function(blazebot_integration_test name)
  add_executable(itest_${name} integration/test_${name}.c)
  target_link_libraries(itest_${name} PRIVATE blazebot_harness blazebot_core)
  blazebot_warnings(itest_${name})
  add_test(NAME integration.${name} COMMAND itest_${name})
  set_tests_properties(integration.${name} PROPERTIES TIMEOUT 600
    ENVIRONMENT "BLAZEBOT_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/tmp;BLAZEBOT_BIN=$<TARGET_FILE:blazebot>;BLAZEBOT_SIM_BIN=$<TARGET_FILE:blazebot-sim>")
  add_dependencies(itest_${name} blazebot blazebot-sim)
endfunction()

blazebot_integration_test(cli)
blazebot_integration_test(flood)
blazebot_integration_test(reconnect)
blazebot_integration_test(auth)
blazebot_integration_test(badframes)
blazebot_integration_test(tls)
blazebot_integration_test(sigterm)
blazebot_integration_test(outbox)
blazebot_integration_test(hup)
blazebot_integration_test(notify)
blazebot_integration_test(handshake)
blazebot_integration_test(sim_strict)
blazebot_integration_test(sim_api)
blazebot_integration_test(edges)
# The example ini with only the URLs moved to the simulator: first-try connect.
blazebot_integration_test(quickstart)
target_compile_definitions(itest_quickstart PRIVATE
  EXAMPLE_INI="${PROJECT_SOURCE_DIR}/examples/blazebot.ini")

# Hot reload: the tests swap variants of tests/reload/reloadtest.c.
include(${CMAKE_CURRENT_LIST_DIR}/../reload/reload.cmake)
function(blazebot_reload_test name)
  blazebot_integration_test(${name})
  target_compile_definitions(itest_${name} PRIVATE RT_DIR="${BLAZEBOT_RELOAD_OUT}")
  add_dependencies(itest_${name} ${BLAZEBOT_RELOAD_TARGETS})
endfunction()
blazebot_reload_test(reload_swap)
blazebot_reload_test(reload_broken)
blazebot_reload_test(reload_plan)
blazebot_reload_test(reload_cycles)
blazebot_reload_test(reload_lifetimes)
# How much the daemon's RSS may grow from cycle 50 to 200 (the sanitizer
# builds' shadow memory and allocator caches get more room; TSan's grew
# about 3 MiB over the 1,000 reloads).
if(BLAZEBOT_SANITIZE OR BLAZEBOT_TSAN)
  target_compile_definitions(itest_reload_cycles PRIVATE RT_RSS_SLACK_KB=16384)
  target_compile_definitions(itest_reload_lifetimes PRIVATE RT_LIFETIME_SLACK_KB=8192)
else()
  target_compile_definitions(itest_reload_cycles PRIVATE RT_RSS_SLACK_KB=8192)
  target_compile_definitions(itest_reload_lifetimes PRIVATE RT_LIFETIME_SLACK_KB=1024)
endif()

# The benchmark (not part of the suite: it prints figures for the README).
#   build/rel/tests/blazebot-bench [--quick] [--json FILE]   (see README)
add_executable(blazebot-bench bench/bench.c)
target_link_libraries(blazebot-bench PRIVATE blazebot_harness blazebot_core)
blazebot_warnings(blazebot-bench)
add_dependencies(blazebot-bench blazebot blazebot-sim echo)
target_compile_definitions(blazebot-bench PRIVATE
  BENCH_DAEMON="$<TARGET_FILE:blazebot>" BENCH_SIM="$<TARGET_FILE:blazebot-sim>"
  BENCH_ECHO_SO="$<TARGET_FILE:echo>" BENCH_TMP="${CMAKE_CURRENT_BINARY_DIR}/tmp")
# That it runs and reports every figure (small counts; the figures are not
# checked: timing lives in the benchmark's report, never in a test).
add_test(NAME bench.quick COMMAND blazebot-bench --quick)
set_tests_properties(bench.quick PROPERTIES TIMEOUT 300
  ENVIRONMENT "BLAZEBOT_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/tmp")
